// English texts of the operator console (registered by console.js on top of the SDK's).

/** @type {import("../../i18n.js").Catalog} */
export default {
};
