export { Session, retryable } from './session.js';
export { SurechatClient, newId, tokenSubject, uploadName } from './client.js';
export { decodeServerFrame, encodeClientFrame, PROTOCOL_VERSION, FrameError } from './frames.js';
export { DEFAULT_CONFIG, TYPING_TTL_MS, MESSAGE_BYTES_MAX, ATTACHMENTS_MAX, ATTACHMENT_BYTES_MAX, backoff, rank } from './types.js';
export { Uploader, UploadError, CHUNK_BYTES } from './uploads.js';
export { AttachmentLinks } from './links.js';
export { sniffType, sniffBlob, DEFAULT_ATTACHMENT_TYPES } from './sniff.js';
export { enablePush, disablePush, pushStatus, pushSupported, PushError } from './push.js';
