// A model of the server's uploads (docs/protocol.md, section 14.1) behind a fake `fetch`, for
// testing the uploader without a network: it stores bytes per upload id, answers PUT, GET, HEAD
// and PATCH as the protocol says, and can cut a PATCH midway (a prefix stored, then no answer).
import { sniffType } from '../../../web/sniff.js';

const problem = (status, code, extra = {}, headers = {}) => new Response(
  JSON.stringify({ type: `urn:surechat:error:${code}`, title: code, status, detail: code, code, ...extra }),
  { status, headers: { 'Content-Type': 'application/problem+json', ...headers } },
);

export class UploadServer {
  /** @param {{ token?: string, allowed?: string[], lengthMax?: number }} [options] */
  constructor(options = {}) {
    this.token = options.token ?? 'token';
    this.allowed = options.allowed ?? ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf'];
    this.lengthMax = options.lengthMax ?? 25 * 1024 * 1024;
    /** id → { conversation, name, length, bytes: Uint8Array, offset, state, type } */
    this.uploads = new Map();
    /** PATCHes refused `offset_mismatch`. */
    this.mismatches = 0;
    /** Every request: [method, id, Upload-Offset header or null]. */
    this.log = [];
    /**
     * Called before each PATCH is applied; may return `{ cutAfter: n }` to store only the first
     * n bytes of the body and answer with a network failure, or a Response to answer instead.
     */
    this.beforePatch = () => null;
    /** Called before any request; may return a Response to answer instead (a 503, a 401). */
    this.intercept = () => null;
    this.fetch = this.fetch.bind(this);
  }

  describe(id) {
    const u = this.uploads.get(id);
    const out = { id, conversation: u.conversation, name: u.name, length: u.length, offset: u.offset, state: u.state };
    if (u.state === 'complete') Object.assign(out, { type: u.type, size: u.length, sha256: 'x', thumb: false });
    return out;
  }

  json(status, body, headers = {}) {
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
  }

  /** @param {string} url @param {RequestInit} init */
  async fetch(url, init = {}) {
    const method = init.method ?? 'GET';
    const id = decodeURIComponent(new URL(url).pathname.split('/')[3] ?? '');
    const headers = new Headers(init.headers);
    this.log.push([method, id, headers.get('Upload-Offset')]);
    const intercepted = this.intercept(method, id, headers);
    if (intercepted) return intercepted;
    if (headers.get('Authorization') !== `Bearer ${this.token}`) return problem(401, 'token_expired');
    const u = this.uploads.get(id);
    if (method === 'PUT') {
      const body = JSON.parse(String(init.body));
      if (body.length > this.lengthMax) return problem(413, 'attachment_too_large');
      if (u) {
        if (u.conversation !== body.conversation || u.length !== body.length || u.name !== body.name) return problem(409, 'id_conflict');
        return this.json(200, this.describe(id));
      }
      this.uploads.set(id, {
        conversation: body.conversation, name: body.name, length: body.length, bytes: new Uint8Array(body.length), offset: 0, state: 'receiving', type: null,
      });
      return this.json(201, this.describe(id));
    }
    if (!u) return problem(404, 'not_found');
    if (method === 'GET') return this.json(200, this.describe(id));
    if (method === 'HEAD') return new Response(null, { status: 200, headers: { 'Upload-Offset': String(u.offset), 'Upload-Length': String(u.length) } });
    if (method === 'PATCH') {
      if (headers.get('Content-Type') !== 'application/offset+octet-stream') return problem(400, 'bad_request');
      const offset = Number(headers.get('Upload-Offset'));
      if (offset !== u.offset) {
        this.mismatches += 1;
        return problem(409, 'offset_mismatch', { offset: u.offset }, { 'Upload-Offset': String(u.offset) });
      }
      const chunk = new Uint8Array(await /** @type {Blob} */ (init.body).arrayBuffer());
      if (u.offset + chunk.length > u.length) return problem(400, 'bad_request');
      const plan = this.beforePatch(id, offset, chunk.length);
      if (plan instanceof Response) return plan;
      if (plan && Number.isInteger(plan.cutAfter)) {
        u.bytes.set(chunk.subarray(0, plan.cutAfter), u.offset);
        u.offset += plan.cutAfter;
        throw new TypeError('Failed to fetch (connection cut)');
      }
      u.bytes.set(chunk, u.offset);
      u.offset += chunk.length;
      if (u.offset === u.length && u.state === 'receiving') {
        const type = sniffType(u.bytes.subarray(0, 16));
        if (!type || !this.allowed.includes(type)) {
          u.state = 'refused';
          u.bytes = new Uint8Array(0);
          return problem(415, 'unsupported_type');
        }
        u.state = 'complete';
        u.type = type;
      }
      return this.json(200, this.describe(id), { 'Upload-Offset': String(u.offset) });
    }
    return problem(405, 'method_not_allowed');
  }
}
