// What `<surechat-chat>` shows of attachments: the files waiting in the composer (with the checks
// that refuse a file before any byte is uploaded), and in a message's bubble the photos as
// thumbnails (full size in a dialog) and other files as cards with a download link, with the
// upload's progress while the message is on its way. Previews of local files are small data:
// URLs drawn on a canvas — pages that forbid `blob:` images (ours do) show them too.

import { h } from './components.js';
import { formatBytes, typeLabel } from './format.js';
import { isImage, refusal } from './sniff.js';
import { ATTACHMENTS_MAX } from './types.js';

export const ATTACH_CSS = `
.attach { background: var(--_bg) !important; color: var(--_fg) !important; border-color: var(--_muted) !important; font-weight: 400 !important; padding: 0 .6rem; display: inline-grid; place-items: center; }
.attach svg, .file-icon svg { inline-size: 1.25rem; block-size: 1.25rem; }
.picker { display: none; }
.pending-files { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: .4rem; list-style: none; margin: 0; padding: 0; }
.pending-files:empty { display: none; }
.pending-files li { display: flex; flex-direction: row; align-self: auto; max-width: 100%; align-items: center; gap: .4rem; max-inline-size: 100%; padding: .2rem .25rem .2rem .35rem; border: 1px solid var(--_border); border-radius: .5rem; background: var(--_surface); font-size: .85rem; }
.pending-files img, .pending-files .file-icon { inline-size: 2.2rem; block-size: 2.2rem; object-fit: cover; border-radius: .3rem; flex: none; }
.pending-files .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-inline-size: 11rem; }
.pending-files .size { color: var(--_muted); white-space: nowrap; }
form .pending-files button { background: transparent; color: var(--_fg); border-color: transparent; font-weight: 400; min-height: 2rem; min-width: 2rem; padding: 0; }
.body:empty { display: none; }
.files { display: flex; flex-direction: column; gap: .35rem; margin-block: .2rem; }
.photos { display: flex; flex-wrap: wrap; gap: .3rem; }
.thumb { padding: 0; border: 0; background: var(--_surface); border-radius: .6rem; overflow: hidden; min-height: 0; line-height: 0; max-inline-size: 100%; }
.thumb img { display: block; max-inline-size: 15rem; max-block-size: 15rem; inline-size: auto; block-size: auto; min-inline-size: 4rem; min-block-size: 3rem; object-fit: cover; }
.thumb .missing { display: inline-block; padding: .8rem; line-height: 1.3; font-size: .8rem; color: var(--_muted); }
.file-card { display: grid; grid-template-columns: auto 1fr; align-items: center; gap: .1rem .6rem; padding: .45rem .7rem .45rem .6rem; border: 1px solid var(--_border); border-radius: .6rem; background: var(--_bg); min-inline-size: min(14rem, 100%); max-inline-size: 100%; box-sizing: border-box; }
.file-icon { display: inline-grid; place-items: center; color: var(--_danger); }
.file-card .file-icon { grid-row: 1 / span 2; }
.file-card .name { font-weight: 600; font-size: .95rem; overflow-wrap: anywhere; }
.file-card .line { display: flex; flex-wrap: wrap; align-items: baseline; gap: .1rem .8rem; font-size: .8rem; color: var(--_muted); }
.file-card .download { color: var(--_link); font-size: .85rem; text-decoration: underline; white-space: nowrap; }
.upload { display: flex; align-items: center; gap: .5rem; font-size: .8rem; color: var(--_muted); }
.upload progress { inline-size: 8rem; accent-color: var(--_accent); }
.dropzone { position: absolute; inset: .4rem; display: grid; place-items: center; border: 3px dashed var(--_accent); border-radius: .75rem; background: color-mix(in srgb, var(--_bg) 88%, transparent); color: var(--_fg); font-weight: 600; pointer-events: none; z-index: 2; }
dialog.viewer { padding: 0; border: 0; border-radius: .75rem; background: var(--_bg); color: var(--_fg); max-inline-size: min(96vw, 70rem); max-block-size: 94vh; }
dialog.viewer::backdrop { background: rgba(0,0,0,.75); }
dialog.viewer img { display: block; max-inline-size: min(96vw, 70rem); max-block-size: calc(94vh - 3.5rem); object-fit: contain; margin: auto; }
dialog.viewer .bar { display: flex; align-items: center; gap: .6rem; padding: .4rem .6rem; }
dialog.viewer .bar .name { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }
dialog.viewer a { color: var(--_link); }
`;

/** Longest side of a local preview, in CSS pixels (twice that in pixels, for sharp screens). */
const PREVIEW_PX = 240;

/**
 * A paperclip or a document, drawn (emoji fonts are often missing on the devices that matter).
 * @param {'clip' | 'doc'} kind
 */
export function icon(kind) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.innerHTML = kind === 'clip'
    ? '<path d="M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>'
    : '<path d="M6 2h8l5 5v15H6z" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/><path d="M14 2v5h5" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/><path d="M9 13h7M9 17h7" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/>';
  return svg;
}

/**
 * A small preview of an image file as a data: URL ('' when the browser cannot draw it).
 * @param {Blob} blob
 * @returns {Promise<string>}
 */
export async function previewUrl(blob) {
  if (typeof createImageBitmap !== 'function') return '';
  try {
    const bitmap = await createImageBitmap(blob);
    const scale = Math.min(1, (PREVIEW_PX * 2) / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return canvas.toDataURL('image/jpeg', 0.82);
  } catch {
    return '';
  }
}

/**
 * What the views need from the chat that shows them.
 * @typedef {object} ChatContext
 * @property {import('./client.js').SurechatClient | null} client
 * @property {(key: string, vars?: Record<string, string | number>) => string} t
 * @property {string} locale
 * @property {ImageViewer} viewer
 */

/**
 * The files chosen for the next message, shown in the composer with a remove button each.
 */
export class PendingFiles {
  /** @param {() => ChatContext} context @param {() => void} changed */
  constructor(context, changed) {
    this.context = context;
    this.changed = changed;
    /** @type {{ file: Blob, item: HTMLElement }[]} */
    this.items = [];
    this.list = h('ul', { class: 'pending-files' });
  }

  /** The files, in the order chosen. */
  files() {
    return this.items.map((i) => i.file);
  }

  /** Labels again in the current language. */
  localize() {
    this.list.setAttribute('aria-label', this.context().t('attach.pending_list'));
  }

  /**
   * Adds files after checking each; returns the reasons for those refused, in the reader's words.
   * @param {Iterable<Blob>} files
   * @param {import('./sniff.js').FileLimits} limits
   * @returns {Promise<string[]>}
   */
  async add(files, limits) {
    const { t, locale } = this.context();
    const reasons = [];
    for (const file of files) {
      if (this.items.length >= ATTACHMENTS_MAX) {
        reasons.push(t('attach.too_many', { max: ATTACHMENTS_MAX }));
        break;
      }
      const refused = await refusal(file, limits, locale);
      if (refused) {
        reasons.push(t(refused.key, refused.vars));
        continue;
      }
      const item = this.item(file);
      this.items.push({ file, item });
      this.list.append(item);
    }
    this.changed();
    return reasons;
  }

  /** @param {Blob} file */
  item(file) {
    const { t, locale } = this.context();
    const name = /** @type {File} */ (file).name || typeLabel(file.type) || t('attach.file');
    const preview = h('span', { class: 'file-icon' }, [icon('doc')]);
    const remove = h('button', { type: 'button', class: 'remove', 'aria-label': t('attach.remove', { name }), title: t('attach.remove', { name }) }, [
      h('span', { 'aria-hidden': 'true' }, ['×']),
    ]);
    const item = h('li', {}, [preview, h('span', { class: 'name', dir: 'auto' }, [name]), h('span', { class: 'size' }, [formatBytes(file.size, locale)]), remove]);
    if (isImage(file.type) || /\.(jpe?g|png|gif|webp)$/i.test(name)) {
      previewUrl(file).then((url) => { if (url) preview.replaceWith(h('img', { src: url, alt: '' })); });
    }
    remove.addEventListener('click', () => {
      const at = this.items.findIndex((i) => i.item === item);
      const next = this.items[at + 1]?.item ?? this.items[at - 1]?.item;
      this.items.splice(at, 1);
      item.remove();
      // Focus to the next file's remove button, or back to the composer (via `changed`).
      /** @type {HTMLElement | null | undefined} */ (next?.querySelector('.remove'))?.focus();
      this.changed();
    });
    return item;
  }

  /** Empties the list (the message went). */
  clear() {
    this.items = [];
    this.list.replaceChildren();
    this.changed();
  }
}

/** The full-size view of a photo: a modal dialog, Escape or the close button ends it. */
export class ImageViewer {
  constructor() {
    this.image = /** @type {HTMLImageElement} */ (h('img', { alt: '' }));
    this.name = h('span', { class: 'name', dir: 'auto' });
    this.download = /** @type {HTMLAnchorElement} */ (h('a', { target: '_blank', rel: 'noopener' }));
    this.close = h('button', { type: 'button', class: 'close' });
    this.dialog = /** @type {HTMLDialogElement} */ (h('dialog', { class: 'viewer' }, [
      h('div', { class: 'bar' }, [this.name, this.download, this.close]), this.image,
    ]));
    this.close.addEventListener('click', () => this.dialog.close());
    // A click on the backdrop (outside the picture and its bar) closes it too.
    this.dialog.addEventListener('click', (e) => { if (e.target === this.dialog) this.dialog.close(); });
    /** @type {HTMLElement | null} */
    this.opener = null;
    this.dialog.addEventListener('close', () => {
      this.image.removeAttribute('src');
      this.opener?.focus();
    });
  }

  /** @param {(key: string, vars?: Record<string, string | number>) => string} t */
  localize(t) {
    this.close.textContent = t('attach.close');
    this.download.textContent = t('attach.download');
  }

  /**
   * @param {string} url The full-size picture.
   * @param {string} name
   * @param {HTMLElement} opener Gets the focus back on close.
   * @param {(key: string, vars?: Record<string, string | number>) => string} t
   */
  open(url, name, opener, t) {
    this.localize(t);
    this.opener = opener;
    this.image.src = url;
    this.image.alt = name;
    this.name.textContent = name;
    this.download.href = url;
    this.download.setAttribute('aria-label', t('attach.download_named', { name }));
    this.dialog.setAttribute('aria-label', name);
    if (!this.dialog.open) this.dialog.showModal();
    this.close.focus();
  }
}

/**
 * Display size of a picture of `width` × `height` in a box of `box` px (attributes that keep the
 * layout still while it loads).
 * @param {number | undefined} width
 * @param {number | undefined} height
 * @param {number} box
 */
function fit(width, height, box) {
  if (!width || !height) return null;
  const scale = Math.min(1, box / Math.max(width, height));
  return { width: String(Math.round(width * scale)), height: String(Math.round(height * scale)) };
}

/**
 * A message's files for its bubble: photos first as thumbnails (a button opens the full size),
 * then cards for other files. Stored files come through signed links; a pending message's
 * files are drawn from this device's copy.
 * @param {ChatContext} ctx
 * @param {import('./types.js').ChatMessage} m
 */
export function attachmentsView(ctx, m) {
  const { t, locale, client } = ctx;
  const all = m.attachments ?? [];
  const local = all.some((a) => 'local' in a && a.local);
  const photos = h('div', { class: 'photos' });
  const cards = [];
  /** @type {Promise<{ id: string, blob: Blob }[]> | null} */
  let localFiles = null;
  const localBlob = async (/** @type {string} */ id) => {
    localFiles ??= client ? client.pendingFiles(m.id) : Promise.resolve([]);
    return (await localFiles).find((f) => f.id === id)?.blob ?? null;
  };
  for (const a of all) {
    const name = a.name || t('attach.file');
    // The server's type decides for a stored file; a pending one has the browser's idea, or its name.
    if (isImage(a.type) || (local && /\.(jpe?g|png|gif|webp)$/i.test(name))) {
      const size = fit(/** @type {any} */ (a).width, /** @type {any} */ (a).height, PREVIEW_PX);
      const img = /** @type {HTMLImageElement} */ (h('img', { alt: '', ...(size ?? {}) }));
      const button = h('button', { type: 'button', class: 'thumb', 'aria-label': t('attach.open_image', { name }), 'data-attachment': a.id }, [img]);
      const missing = () => button.replaceChildren(h('span', { class: 'missing' }, [t('attach.unavailable', { name })]));
      if (local) {
        localBlob(a.id).then((blob) => (blob ? previewUrl(blob) : '')).then((url) => { if (url) img.src = url; else missing(); });
        button.addEventListener('click', async () => {
          const blob = await localBlob(a.id);
          const url = blob ? await previewUrl(blob) : '';
          if (url) ctx.viewer.open(url, name, button, t);
        });
      } else if (client) {
        client.attachmentLink(a.id).then((link) => {
          img.src = /** @type {any} */ (a).thumb && link.thumb_url ? link.thumb_url : link.url;
        }, missing);
        img.addEventListener('error', missing, { once: true });
        button.addEventListener('click', async () => {
          try {
            ctx.viewer.open((await client.attachmentLink(a.id)).url, name, button, t);
          } catch {
            missing();
          }
        });
      }
      photos.append(button);
    } else {
      const detail = [typeLabel(a.type), formatBytes(a.size, locale)].filter(Boolean).join(' · ');
      const line = h('span', { class: 'line' }, [h('span', { class: 'detail' }, [detail])]);
      const card = h('div', { class: 'file-card', 'data-attachment': a.id }, [
        h('span', { class: 'file-icon' }, [icon('doc')]),
        h('span', { class: 'name', dir: 'auto' }, [name]),
        line,
      ]);
      if (!local && client) {
        const link = /** @type {HTMLAnchorElement} */ (h('a', {
          class: 'download', download: name, rel: 'noopener', 'aria-label': t('attach.download_named', { name }),
        }, [t('attach.download')]));
        // Signed links expire: take a fresh one when the reader is about to use it.
        const refresh = () => client.attachmentLink(a.id).then((l) => { link.href = l.url; }, () => {});
        refresh();
        link.addEventListener('focus', refresh);
        link.addEventListener('pointerenter', refresh);
        line.append(link);
      }
      cards.push(card);
    }
  }
  return h('div', { class: 'files', 'data-local': String(local) }, [...(photos.children.length ? [photos] : []), ...cards]);
}

/**
 * The upload's progress line of a pending message with files, or null when none is shown.
 * @param {ChatContext} ctx
 * @param {import('./types.js').ChatMessage} m
 */
export function uploadLine(ctx, m) {
  if (m.status?.name !== 'sending' || !m.attachments?.some((a) => 'local' in a && a.local)) return null;
  const progress = ctx.client?.uploadProgress(m.id);
  const bar = /** @type {HTMLProgressElement} */ (h('progress', { max: '100' }));
  const label = h('span');
  const line = h('div', { class: 'upload' }, [bar, label]);
  if (progress && progress.length > 0) {
    const percent = Math.floor((100 * progress.bytes) / progress.length);
    bar.value = percent;
    label.textContent = ctx.t('attach.uploading', { percent });
    bar.setAttribute('aria-label', label.textContent);
  } else {
    // Not started (offline, or waiting for an earlier message's files): an indeterminate bar.
    bar.removeAttribute('value');
    label.textContent = ctx.t('attach.waiting');
    bar.setAttribute('aria-label', label.textContent);
  }
  return line;
}
