export { Session, retryable } from './session.js';
export { SurechatClient, newId, tokenSubject } from './client.js';
export { decodeServerFrame, encodeClientFrame, PROTOCOL_VERSION, FrameError } from './frames.js';
export { DEFAULT_CONFIG, TYPING_TTL_MS, MESSAGE_BYTES_MAX, backoff, rank } from './types.js';
export { enablePush, disablePush, pushStatus, pushSupported, PushError } from './push.js';
