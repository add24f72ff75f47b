export declare const ATTACH_CSS = "\n.attach { background: var(--_bg) !important; color: var(--_fg) !important; border-color: var(--_muted) !important; font-weight: 400 !important; padding: 0 .6rem; display: inline-grid; place-items: center; }\n.attach svg, .file-icon svg { inline-size: 1.25rem; block-size: 1.25rem; }\n.picker { display: none; }\n.pending-files { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: .4rem; list-style: none; margin: 0; padding: 0; }\n.pending-files:empty { display: none; }\n.pending-files li { display: flex; flex-direction: row; align-self: auto; max-width: 100%; align-items: center; gap: .4rem; max-inline-size: 100%; padding: .2rem .25rem .2rem .35rem; border: 1px solid var(--_border); border-radius: .5rem; background: var(--_surface); font-size: .85rem; }\n.pending-files img, .pending-files .file-icon { inline-size: 2.2rem; block-size: 2.2rem; object-fit: cover; border-radius: .3rem; flex: none; }\n.pending-files .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-inline-size: 11rem; }\n.pending-files .size { color: var(--_muted); white-space: nowrap; }\nform .pending-files button { background: transparent; color: var(--_fg); border-color: transparent; font-weight: 400; min-height: 2rem; min-width: 2rem; padding: 0; }\n.body:empty { display: none; }\n.files { display: flex; flex-direction: column; gap: .35rem; margin-block: .2rem; }\n.photos { display: flex; flex-wrap: wrap; gap: .3rem; }\n.thumb { padding: 0; border: 0; background: var(--_surface); border-radius: .6rem; overflow: hidden; min-height: 0; line-height: 0; max-inline-size: 100%; }\n.thumb img { display: block; max-inline-size: 15rem; max-block-size: 15rem; inline-size: auto; block-size: auto; min-inline-size: 4rem; min-block-size: 3rem; object-fit: cover; }\n.thumb .missing { display: inline-block; padding: .8rem; line-height: 1.3; font-size: .8rem; color: var(--_muted); }\n.file-card { display: grid; grid-template-columns: auto 1fr; align-items: center; gap: .1rem .6rem; padding: .45rem .7rem .45rem .6rem; border: 1px solid var(--_border); border-radius: .6rem; background: var(--_bg); min-inline-size: min(14rem, 100%); max-inline-size: 100%; box-sizing: border-box; }\n.file-icon { display: inline-grid; place-items: center; color: var(--_danger); }\n.file-card .file-icon { grid-row: 1 / span 2; }\n.file-card .name { font-weight: 600; font-size: .95rem; overflow-wrap: anywhere; }\n.file-card .line { display: flex; flex-wrap: wrap; align-items: baseline; gap: .1rem .8rem; font-size: .8rem; color: var(--_muted); }\n.file-card .download { color: var(--_link); font-size: .85rem; text-decoration: underline; white-space: nowrap; }\n.upload { display: flex; align-items: center; gap: .5rem; font-size: .8rem; color: var(--_muted); }\n.upload progress { inline-size: 8rem; accent-color: var(--_accent); }\n.dropzone { position: absolute; inset: .4rem; display: grid; place-items: center; border: 3px dashed var(--_accent); border-radius: .75rem; background: color-mix(in srgb, var(--_bg) 88%, transparent); color: var(--_fg); font-weight: 600; pointer-events: none; z-index: 2; }\ndialog.viewer { padding: 0; border: 0; border-radius: .75rem; background: var(--_bg); color: var(--_fg); max-inline-size: min(96vw, 70rem); max-block-size: 94vh; }\ndialog.viewer::backdrop { background: rgba(0,0,0,.75); }\ndialog.viewer img { display: block; max-inline-size: min(96vw, 70rem); max-block-size: calc(94vh - 3.5rem); object-fit: contain; margin: auto; }\ndialog.viewer .bar { display: flex; align-items: center; gap: .6rem; padding: .4rem .6rem; }\ndialog.viewer .bar .name { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }\ndialog.viewer a { color: var(--_link); }\n";
/**
 * A paperclip or a document, drawn (emoji fonts are often missing on the devices that matter).
 * @param {'clip' | 'doc'} kind
 */
export declare function icon(kind: 'clip' | 'doc'): SVGSVGElement;
/**
 * A small preview of an image file as a data: URL ('' when the browser cannot draw it).
 * @param {Blob} blob
 * @returns {Promise<string>}
 */
export declare function previewUrl(blob: Blob): Promise<string>;
export type ChatContext = {
    client: import('./client.js').SurechatClient | null;
    t: (key: string, vars?: Record<string, string | number>) => string;
    locale: string;
    viewer: ImageViewer;
};
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
export declare class PendingFiles {
    context: () => ChatContext;
    changed: () => void;
    /** @type {{ file: Blob, item: HTMLElement }[]} */
    items: {
        file: Blob;
        item: HTMLElement;
    }[];
    list: HTMLElement;
    /** @param {() => ChatContext} context @param {() => void} changed */
    constructor(context: () => ChatContext, changed: () => void);
    /** The files, in the order chosen. */
    files(): Blob[];
    /** Labels again in the current language. */
    localize(): void;
    /**
     * Adds files after checking each; returns the reasons for those refused, in the reader's words.
     * @param {Iterable<Blob>} files
     * @param {import('./sniff.js').FileLimits} limits
     * @returns {Promise<string[]>}
     */
    add(files: Iterable<Blob>, limits: import('./sniff.js').FileLimits): Promise<string[]>;
    /** @param {Blob} file */
    item(file: Blob): HTMLElement;
    /** Empties the list (the message went). */
    clear(): void;
}
/** The full-size view of a photo: a modal dialog, Escape or the close button ends it. */
export declare class ImageViewer {
    image: HTMLImageElement;
    name: HTMLElement;
    download: HTMLAnchorElement;
    close: HTMLElement;
    dialog: HTMLDialogElement;
    /** @type {HTMLElement | null} */
    opener: HTMLElement | null;
    constructor();
    /** @param {(key: string, vars?: Record<string, string | number>) => string} t */
    localize(t: (key: string, vars?: Record<string, string | number>) => string): void;
    /**
     * @param {string} url The full-size picture.
     * @param {string} name
     * @param {HTMLElement} opener Gets the focus back on close.
     * @param {(key: string, vars?: Record<string, string | number>) => string} t
     */
    open(url: string, name: string, opener: HTMLElement, t: (key: string, vars?: Record<string, string | number>) => string): void;
}
/**
 * A message's files for its bubble: photos first as thumbnails (a button opens the full size),
 * then cards for other files. Stored files come through signed links; a pending message's
 * files are drawn from this device's copy.
 * @param {ChatContext} ctx
 * @param {import('./types.js').ChatMessage} m
 */
export declare function attachmentsView(ctx: ChatContext, m: import('./types.js').ChatMessage): HTMLElement;
/**
 * The upload's progress line of a pending message with files, or null when none is shown.
 * @param {ChatContext} ctx
 * @param {import('./types.js').ChatMessage} m
 */
export declare function uploadLine(ctx: ChatContext, m: import('./types.js').ChatMessage): HTMLElement | null;
