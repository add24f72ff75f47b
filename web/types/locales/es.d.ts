/** @type {import("../i18n.js").Catalog} */
declare const _default: import("../i18n.js").Catalog;
export default _default;
