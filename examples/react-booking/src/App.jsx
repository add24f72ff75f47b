// A booking page's chat built on the hook: messages with ticks, the connection badge, the
// pending banner with "Retry", and a composer. The web components would do the same in one tag;
// this shows the hook for apps that render everything themselves.
import { useState } from 'react';
import { useChatWithDelivery } from 'surechat/react';

const TICKS = { sending: '🕓 Sending', sent: '✓ Sent', delivered: '✓✓ Delivered', read: '✓✓ Read', failed: '✗ Failed' };

export function App({ token, conversationId, server }) {
  const {
    messages, sendMessage, connectionStatus, pendingMessagesCount, retryFailedMessages, typing, client,
  } = useChatWithDelivery({ conversationId, token, server });
  const [text, setText] = useState('');
  const me = client.userId;

  const submit = (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    sendMessage(text);
    setText('');
  };

  return (
    <main style={{ maxWidth: 640, margin: '0 auto', font: '15px system-ui, sans-serif' }}>
      <h1 style={{ fontSize: '1.1rem' }}>Your booking {conversationId}</h1>
      <p role="status" data-connection={connectionStatus}>Connection: {connectionStatus}</p>
      {pendingMessagesCount > 0 && (
        <p role="status" data-pending={pendingMessagesCount}>
          {pendingMessagesCount} waiting to be sent{' '}
          <button type="button" onClick={() => retryFailedMessages()}>Retry</button>
        </p>
      )}
      <ol aria-live="polite" style={{ listStyle: 'none', padding: 0 }}>
        {messages.map((m) => (
          <li key={m.id} data-id={m.id} data-status={m.delivery_status ?? ''}
            style={{ textAlign: m.sender === me ? 'right' : 'left', margin: '.3rem 0' }}>
            <span className="body">{m.body}</span>{' '}
            {m.delivery_status && <small title={m.error ?? undefined}>{TICKS[m.delivery_status]}</small>}
          </li>
        ))}
      </ol>
      {typing.length > 0 && <p><i>{typing.join(', ')} typing…</i></p>}
      <form onSubmit={submit}>
        <input aria-label="Message" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Send</button>
      </form>
    </main>
  );
}
