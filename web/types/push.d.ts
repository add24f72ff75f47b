export type PushOptions = {
    /**
     * The user's token for the server's API.
     */
    getToken: () => string | Promise<string>;
    /**
     * Base URL of the surechat server; default: this page's origin.
     */
    baseUrl?: string;
    /**
     * The service worker that shows the
     * notifications; default: this page's (`navigator.serviceWorker.ready`).
     */
    registration?: ServiceWorkerRegistration;
};
/**
 * @typedef {object} PushOptions
 * @property {() => string | Promise<string>} getToken The user's token for the server's API.
 * @property {string} [baseUrl] Base URL of the surechat server; default: this page's origin.
 * @property {ServiceWorkerRegistration} [registration] The service worker that shows the
 *   notifications; default: this page's (`navigator.serviceWorker.ready`).
 */
/**
 * Why push could not be enabled: `unsupported` (no service worker, Push API or notifications
 * in this browser or context, e.g. a page not served over HTTPS), `denied` (the user did not
 * allow notifications) or `server` (the server's API refused or could not be reached; `status`
 * is its HTTP status, 0 for a network failure).
 */
export declare class PushError extends Error {
    code: "denied" | "server" | "unsupported";
    status: number;
    /**
     * @param {'unsupported' | 'denied' | 'server'} code
     * @param {string} message
     * @param {number} [status]
     */
    constructor(code: 'unsupported' | 'denied' | 'server', message: string, status?: number);
}
/** Whether this browser and page can receive pushes at all. */
export declare function pushSupported(): boolean;
/**
 * Subscribes this browser to pushes and registers the subscription with the server. Call it
 * from a user gesture (a click): it asks for permission to notify if that is not decided yet.
 * Calling it again is harmless: the existing subscription is reused (and registered again),
 * unless the server's key changed, in which case it is replaced.
 * @param {PushOptions} options
 * @returns {Promise<PushSubscription>}
 */
export declare function enablePush({ baseUrl, getToken, registration }: PushOptions): Promise<PushSubscription>;
/**
 * Stops pushes to this browser: removes the subscription from the server, then unsubscribes
 * at the push service. The browser is unsubscribed even when the server cannot be reached (its
 * pushes are then refused by the push service, and the server forgets the subscription), and
 * the server's error is thrown after.
 * @param {PushOptions} options
 * @returns {Promise<boolean>} Whether there was a subscription.
 */
export declare function disablePush({ baseUrl, getToken, registration }: PushOptions): Promise<boolean>;
/**
 * Whether pushes reach this browser now: `unsupported`, `denied` (notifications blocked),
 * `off` (not subscribed) or `on`. For showing the right button; it asks nothing.
 * @param {{ registration?: ServiceWorkerRegistration }} [options]
 * @returns {Promise<'unsupported' | 'denied' | 'off' | 'on'>}
 */
export declare function pushStatus({ registration }?: {
    registration?: ServiceWorkerRegistration;
}): Promise<'unsupported' | 'denied' | 'off' | 'on'>;
