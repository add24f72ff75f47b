// Entry of the example: reads the token, conversation and server from the URL fragment
// (#token=…&conversation=…&server=http://…), as the surechat demo pages do.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';

const params = new URLSearchParams(location.hash.slice(1));
createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App
      token={params.get('token') ?? ''}
      conversationId={params.get('conversation') ?? ''}
      server={params.get('server') ?? undefined}
    />
  </StrictMode>,
);
