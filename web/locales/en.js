// English texts of the SDK's components. Keys are shared with the other languages.

/** @type {import("../i18n.js").Catalog} */
export default {
};
