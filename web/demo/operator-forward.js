// The console used to live here: links printed by older demos (with the token in the fragment)
// still open it.
location.replace(`../console/${location.hash}`);

// A module (loaded with type="module"): its names are its own.
export {};
