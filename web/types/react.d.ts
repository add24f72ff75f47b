import { SurechatClient } from './client.js';
export type HookMessage = import('./types.js').ChatMessage & {
    delivery_status: 'sending' | 'sent' | 'delivered' | 'read' | 'failed' | null;
    error: string | null;
};
export type UseChatOptions = {
    /**
     * The booking's conversation.
     */
    conversationId: string;
    /**
     * The user's token (ignored when `client` is given).
     */
    token?: string;
    /**
     * Fresh token when the current one expired.
     */
    getToken?: () => Promise<string>;
    /**
     * surechat base URL; default: this page's origin.
     */
    server?: string;
    /**
     * A client shared with other components.
     */
    client?: SurechatClient;
};
export type UseChatResult = {
    /**
     * In order: stored ones by seq, then pending ones.
     */
    messages: HookMessage[];
    /**
     * Queues a message (with
     * `files`: photos and PDFs, uploaded before it goes); resolves to its id once stored locally.
     */
    sendMessage: (text: string, options?: {
        files?: Blob[];
    }) => Promise<string>;
    connectionStatus: import('./types.js').ConnectionStatus['name'];
    /**
     * When reconnecting: time of the next attempt (ms).
     */
    nextAttemptAt: number | null;
    /**
     * Not yet stored on the server (failed ones included).
     */
    pendingMessagesCount: number;
    /**
     * Resends failed messages with their ids.
     */
    retryFailedMessages: (id?: string) => void;
    /**
     * Drops a failed message (before sending an edited text).
     */
    discardMessage: (id: string) => void;
    /**
     * Marks everything received here as read.
     */
    markRead: () => void;
    /**
     * Users typing now.
     */
    typing: string[];
    /**
     * Tells the others this user types.
     */
    setTyping: (active: boolean) => void;
    /**
     * Tries to connect now.
     */
    reconnect: () => void;
    /**
     * The underlying client (events: connection_status, delivery_status, …).
     */
    client: SurechatClient;
};
/**
 * A message with its delivery status, as the hook returns it.
 * @typedef {import('./types.js').ChatMessage & {
 *   delivery_status: 'sending' | 'sent' | 'delivered' | 'read' | 'failed' | null,
 *   error: string | null }} HookMessage
 */
/**
 * @typedef {object} UseChatOptions
 * @property {string} conversationId The booking's conversation.
 * @property {string} [token] The user's token (ignored when `client` is given).
 * @property {() => Promise<string>} [getToken] Fresh token when the current one expired.
 * @property {string} [server] surechat base URL; default: this page's origin.
 * @property {SurechatClient} [client] A client shared with other components.
 */
/**
 * @typedef {object} UseChatResult
 * @property {HookMessage[]} messages In order: stored ones by seq, then pending ones.
 * @property {(text: string, options?: { files?: Blob[] }) => Promise<string>} sendMessage Queues a message (with
 *   `files`: photos and PDFs, uploaded before it goes); resolves to its id once stored locally.
 * @property {import('./types.js').ConnectionStatus['name']} connectionStatus
 * @property {number | null} nextAttemptAt When reconnecting: time of the next attempt (ms).
 * @property {number} pendingMessagesCount Not yet stored on the server (failed ones included).
 * @property {(id?: string) => void} retryFailedMessages Resends failed messages with their ids.
 * @property {(id: string) => void} discardMessage Drops a failed message (before sending an edited text).
 * @property {() => void} markRead Marks everything received here as read.
 * @property {string[]} typing Users typing now.
 * @property {(active: boolean) => void} setTyping Tells the others this user types.
 * @property {() => void} reconnect Tries to connect now.
 * @property {SurechatClient} client The underlying client (events: connection_status, delivery_status, …).
 */
/**
 * Chat state of one conversation, kept current, with delivery statuses.
 * @param {UseChatOptions} options
 * @returns {UseChatResult}
 */
export declare function useChat({ conversationId, token, getToken, server, client: given }: UseChatOptions): UseChatResult;
/** The same hook under the name of the original integration. */
export declare const useChatWithDelivery: typeof useChat;
