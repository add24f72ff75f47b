// The surechat browser SDK: the sans-IO session, the browser driver, and the wire codec. The
// web components are in `components.js` and the React hook in `react.js`, so an app loads only
// what it uses.

export { Session } from './session.js';
export { SurechatClient, newId, tokenSubject } from './client.js';
export { decodeServerFrame, encodeClientFrame, PROTOCOL_VERSION, FrameError } from './frames.js';
export { DEFAULT_CONFIG, TYPING_TTL_MS, MESSAGE_BYTES_MAX, backoff, rank } from './types.js';
