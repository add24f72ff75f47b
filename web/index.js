// The surechat browser SDK: the sans-IO session, the browser driver, the wire codec, resumable
// uploads of attachments and their signed links, and Web Push subscription (`push.js`, small and
// without side effects). The web components are in `components.js` and the React hook in
// `react.js`, so an app loads only what it uses.

export { Session, retryable } from './session.js';
export { SurechatClient, newId, tokenSubject, uploadName } from './client.js';
export { decodeServerFrame, encodeClientFrame, PROTOCOL_VERSION, FrameError } from './frames.js';
export { DEFAULT_CONFIG, TYPING_TTL_MS, MESSAGE_BYTES_MAX, ATTACHMENTS_MAX, ATTACHMENT_BYTES_MAX, backoff, rank } from './types.js';
export { Uploader, UploadError, CHUNK_BYTES } from './uploads.js';
export { AttachmentLinks } from './links.js';
export { sniffType, sniffBlob, DEFAULT_ATTACHMENT_TYPES } from './sniff.js';
export { enablePush, disablePush, pushStatus, pushSupported, PushError } from './push.js';
