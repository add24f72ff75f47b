// The React hook: `useChat` (also exported as `useChatWithDelivery`, the name integrators of
// the original design know). React is a peer dependency of this module only; the rest of the
// SDK needs no framework.

import { useCallback, useEffect, useState } from 'react';
import { SurechatClient } from './client.js';

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
export function useChat({ conversationId, token, getToken, server, client: given }) {
  const [own] = useState(() => (given ? null : new SurechatClient({ token, getToken, server })));
  const client = given ?? /** @type {SurechatClient} */ (own);
  const [, setVersion] = useState(0);

  useEffect(() => {
    client.holders += 1;
    const off = client.on('change', () => setVersion((v) => v + 1));
    client.start();
    setVersion((v) => v + 1);
    return () => {
      off();
      client.holders -= 1;
      // React's StrictMode unmounts and mounts again at once: stop only if it stays unmounted.
      if (own) setTimeout(() => { if (client.holders === 0) own.stop(); }, 0);
    };
  }, [client, own]);

  const status = client.status;
  const messages = client.messages(conversationId).map((m) => ({
    ...m,
    delivery_status: m.status?.name ?? null,
    error: m.status?.name === 'failed' ? m.status.message : null,
  }));

  return {
    messages,
    sendMessage: useCallback((text, options) => client.send(conversationId, text, options), [client, conversationId]),
    connectionStatus: status.name,
    nextAttemptAt: status.name === 'reconnecting' ? status.nextAttemptAt : null,
    pendingMessagesCount: client.pendingCount,
    retryFailedMessages: useCallback((id) => client.retryFailed(id), [client]),
    discardMessage: useCallback((id) => client.discard(id), [client]),
    markRead: useCallback(() => client.markRead(conversationId), [client, conversationId]),
    typing: client.typing(conversationId),
    setTyping: useCallback((active) => client.setTyping(conversationId, active), [client, conversationId]),
    reconnect: useCallback(() => client.reconnect(), [client]),
    client,
  };
}

/** The same hook under the name of the original integration. */
export const useChatWithDelivery = useChat;
