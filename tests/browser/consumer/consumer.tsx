// An integrator's TypeScript code against the `surechat` package as npm installs it (the packed
// tarball in ./node_modules, resolved through the package's `exports` and `types`), never the
// repository's files. Type-checked with strict settings, under both module resolutions apps use:
//   tsconfig.json (bundler: Vite, webpack, esbuild) and tsconfig.node16.json (Node's rules).
// Nothing here runs; `tsc` failing means an integrator's code like this would not compile.
import { useState } from 'react';
import { SurechatClient, newId, tokenSubject, PROTOCOL_VERSION, DEFAULT_CONFIG, backoff, rank } from 'surechat';
import { SurechatClient as ClientFromSubpath } from 'surechat/client';
import { decodeServerFrame, FrameError } from 'surechat/frames';
import type { ChatMessage, ConnectionStatus, DeliveryStatus } from 'surechat/types';
import { useChat, useChatWithDelivery } from 'surechat/react';
import type { HookMessage, UseChatResult } from 'surechat/react';
import { ChatElement, ConnectionStatusElement, DeliveryIndicatorElement } from 'surechat/components';
import { enablePush, disablePush, pushStatus, PushError } from 'surechat/push';
import { enablePush as enablePushFromRoot } from 'surechat';

declare const analytics: { track(event: string, data: Record<string, unknown>): void };

// The plain client: create, listen, send.
const client = new SurechatClient({
  token: 'jwt-from-the-backend',
  getToken: async () => 'a-fresh-jwt',
  server: 'https://chat.example.com',
  config: { backoffCapMs: 30000 },
});
const same: ClientFromSubpath = client;
void same.start();
const off: () => void = client.on('delivery_status', ({ status }: { status: DeliveryStatus }) => {
  if (status.name === 'failed') analytics.track('message_failed', { code: status.code });
});
off();
client.on('connection_status', ({ status }: { status: ConnectionStatus }) => {
  analytics.track('connection', { status: status.name, next: status.name === 'reconnecting' ? status.nextAttemptAt : null });
});
const sent: Promise<string> = client.send('booking-1001', 'Hello');
void client.send('booking-1001', 'Only operators see this', { kind: 'note' });
client.markRead('booking-1001');
client.setTyping('booking-1001', true);
client.retryFailed();
const history: ChatMessage[] = client.messages('booking-1001');
const pending: number = client.pendingCount;
const me: string | null = client.userId;
const subject: string | null = tokenSubject('a.b.c');
const id: string = newId();
const version: number = PROTOCOL_VERSION;
const firstRetryMs: number = backoff(DEFAULT_CONFIG, 1, 0.5);
const order: number = rank({ name: 'delivered' });
try {
  decodeServerFrame('{}');
} catch (e) {
  if (e instanceof FrameError) console.error(e.message);
}
console.log(sent, history, pending, me, subject, id, version, firstRetryMs, order);

// The web components: the complete chat, and a part of it.
const chat = document.querySelector('surechat-chat');
if (chat instanceof ChatElement) {
  chat.client = client;
  chat.sendOptions = { kind: 'note' };
  chat.systemText = (m: ChatMessage) => `${m.sender}: ${m.body}`;
}
const badge = new ConnectionStatusElement();
badge.client = client;
const tick = new DeliveryIndicatorElement();
tick.setAttribute('status', 'read');

// The React hook.
const TICKS: Record<NonNullable<HookMessage['delivery_status']>, string> = {
  sending: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓ read', failed: '✗',
};

export function Booking({ token, conversationId }: { token: string; conversationId: string }) {
  const chatState: UseChatResult = useChatWithDelivery({ conversationId, token, server: 'https://chat.example.com' });
  const { messages, sendMessage, connectionStatus, pendingMessagesCount, retryFailedMessages, typing } = chatState;
  const [text, setText] = useState('');
  return (
    <main>
      <p role="status">{connectionStatus}{pendingMessagesCount > 0 && ` (${pendingMessagesCount} waiting)`}</p>
      <ol>
        {messages.map((m) => (
          <li key={m.id}>
            {m.body} {m.delivery_status && TICKS[m.delivery_status]} {m.error}
            {m.delivery_status === 'failed' && <button onClick={() => retryFailedMessages(m.id)}>Retry</button>}
          </li>
        ))}
      </ol>
      {typing.length > 0 && <p>{typing.join(', ')} typing…</p>}
      <form onSubmit={(e) => { e.preventDefault(); void sendMessage(text).then((messageId: string) => console.log(messageId)); setText(''); }}>
        <input value={text} onChange={(e) => setText(e.target.value)} />
      </form>
    </main>
  );
}

export function SharedClient() {
  const { messages, markRead } = useChat({ conversationId: 'booking-1001', client });
  return <button onClick={markRead}>{messages.length} messages</button>;
}

// Web Push, switched on and off from a button (the permission prompt needs the click).
export function PushToggle({ getToken }: { getToken: () => Promise<string> }) {
  const [status, setStatus] = useState<'unsupported' | 'denied' | 'off' | 'on'>('off');
  const toggle = async () => {
    try {
      if (status === 'on') await disablePush({ getToken, baseUrl: 'https://chat.example.com' });
      else {
        const subscription: PushSubscription = await enablePush({ getToken, baseUrl: 'https://chat.example.com' });
        console.log(subscription.endpoint, enablePushFromRoot === enablePush);
      }
    } catch (e) {
      if (e instanceof PushError && e.code === 'denied') console.log('blocked', e.status);
    }
    setStatus(await pushStatus());
  };
  return <button disabled={status === 'unsupported' || status === 'denied'} onClick={() => void toggle()}>{status === 'on' ? 'Stop notifications' : 'Notify me'}</button>;
}
