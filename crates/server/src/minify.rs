//! Comment and indentation stripping for the JavaScript files served under `/web/`.
//!
//! The SDK is written to be read: JSDoc types and comments make up about 40 % of its bytes. A
//! phone on a slow network should not download them, and an integrator using the files straight
//! from the server has no bundler to remove them. This is not a minifier: it removes comments,
//! indentation, trailing spaces and empty lines and nothing else, so the code that runs is the
//! code in `web/`, token for token.
//!
//! It tokenizes just enough to know where comments can be: strings, template literals (with
//! `${…}` nesting) and regular expression literals are copied untouched, and a line that starts
//! inside a template literal keeps its indentation. A block comment that spans lines becomes a
//! line break, so automatic semicolon insertion reads the code as before.

/// Where the scanner is.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Code,
    /// Inside a '…' or "…" string; the quote.
    Quote(u8),
    Template,
    Regex {
        in_class: bool,
    },
}

/// `src` without comments, indentation, trailing spaces and empty lines.
pub fn strip_js(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(src.len());
    let mut state = State::Code;
    // For each open `${` of a template literal, the depth of `{` inside it.
    let mut templates: Vec<usize> = Vec::new();
    // The last significant byte of code written, to tell a regex from a division.
    let mut last_significant: Option<usize> = None;
    let mut line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match state {
            State::Code => {
                if line_start {
                    // Indentation of a line that starts in code.
                    if b == b' ' || b == b'\t' {
                        i += 1;
                        continue;
                    }
                    line_start = false;
                }
                if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    let end = src[i + 2..]
                        .find("*/")
                        .map_or(bytes.len(), |e| i + 2 + e + 2);
                    let newline = src[i..end].contains('\n');
                    i = end;
                    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
                        i += 1;
                    }
                    if newline {
                        push_newline(&mut out);
                        line_start = true;
                    } else if matches!(out.last(), None | Some(b'\n')) {
                        line_start = true;
                    } else if !matches!(out.last(), Some(b' ')) && bytes.get(i) != Some(&b'\n') {
                        out.push(b' ');
                    }
                    continue;
                }
                if b == b'\n' {
                    push_newline(&mut out);
                    line_start = true;
                    i += 1;
                    continue;
                }
                match b {
                    b'\'' | b'"' => state = State::Quote(b),
                    b'`' => state = State::Template,
                    b'/' if regex_may_start(&out, last_significant) => {
                        state = State::Regex { in_class: false }
                    }
                    b'{' => {
                        if let Some(depth) = templates.last_mut() {
                            *depth += 1;
                        }
                    }
                    b'}' => match templates.last_mut() {
                        Some(0) => {
                            templates.pop();
                            out.push(b);
                            i += 1;
                            state = State::Template;
                            continue;
                        }
                        Some(depth) => *depth -= 1,
                        None => {}
                    },
                    _ => {}
                }
                out.push(b);
                if !b.is_ascii_whitespace() {
                    last_significant = Some(out.len() - 1);
                }
                i += 1;
            }
            State::Quote(quote) => {
                out.push(b);
                i += 1;
                if b == b'\\' {
                    if let Some(&next) = bytes.get(i) {
                        out.push(next);
                        i += 1;
                    }
                } else if b == quote || b == b'\n' {
                    state = State::Code;
                    last_significant = Some(out.len() - 1);
                }
            }
            State::Template => {
                out.push(b);
                i += 1;
                match b {
                    b'\\' => {
                        if let Some(&next) = bytes.get(i) {
                            out.push(next);
                            i += 1;
                        }
                    }
                    b'`' => {
                        state = State::Code;
                        last_significant = Some(out.len() - 1);
                    }
                    b'$' if bytes.get(i) == Some(&b'{') => {
                        out.push(b'{');
                        i += 1;
                        templates.push(0);
                        state = State::Code;
                        last_significant = Some(out.len() - 1);
                    }
                    _ => {}
                }
            }
            State::Regex { in_class } => {
                out.push(b);
                i += 1;
                match b {
                    b'\\' => {
                        if let Some(&next) = bytes.get(i) {
                            out.push(next);
                            i += 1;
                        }
                    }
                    b'[' => state = State::Regex { in_class: true },
                    b']' => state = State::Regex { in_class: false },
                    b'/' if !in_class => {
                        state = State::Code;
                        last_significant = Some(out.len() - 1);
                    }
                    b'\n' => state = State::Code,
                    _ => {}
                }
            }
        }
    }
    while matches!(out.last(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        out.pop();
    }
    if !out.is_empty() {
        out.push(b'\n');
    }
    // Only ASCII bytes were removed or added, between whole characters: still UTF-8.
    String::from_utf8(out).expect("stripping keeps UTF-8 intact")
}

/// Ends the line being written: trailing spaces go, and an empty line is not written at all.
fn push_newline(out: &mut Vec<u8>) {
    trim_trailing(out);
    if !matches!(out.last(), None | Some(b'\n')) {
        out.push(b'\n');
    }
}

fn trim_trailing(out: &mut Vec<u8>) {
    while matches!(out.last(), Some(b' ' | b'\t' | b'\r')) {
        out.pop();
    }
}

/// Whether a `/` after what was written starts a regular expression rather than a division: after
/// an operator, an opening bracket, a separator or a keyword that takes an expression; never
/// after a name, a number or a closing bracket.
fn regex_may_start(out: &[u8], last: Option<usize>) -> bool {
    let Some(at) = last else { return true };
    let b = out[at];
    if b"(,=:[!&|?{};+-*%<>~^".contains(&b) {
        return true;
    }
    if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
        return false;
    }
    let start = out[..=at]
        .iter()
        .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
        .map_or(0, |p| p + 1);
    matches!(
        &out[start..=at],
        b"return"
            | b"typeof"
            | b"instanceof"
            | b"in"
            | b"of"
            | b"new"
            | b"delete"
            | b"void"
            | b"throw"
            | b"case"
            | b"do"
            | b"else"
            | b"yield"
            | b"await"
    )
}

#[cfg(test)]
mod tests {
    use super::strip_js;

    #[test]
    fn comments_indentation_and_empty_lines_go() {
        let src = "// header\n\n/** Doc.\n * @param {number} a\n */\nexport function f(a) {\n    return a + 1; // why\n}\n";
        assert_eq!(strip_js(src), "export function f(a) {\nreturn a + 1;\n}\n");
    }

    #[test]
    fn strings_keep_what_looks_like_comments() {
        let src = "const a = 'http://x/*y*/';\nconst b = \"// not a comment\";\nconst c = 'it\\'s // still';\n";
        assert_eq!(strip_js(src), src);
    }

    #[test]
    fn template_literals_keep_their_lines_and_nest() {
        let src = "const css = `\n  a { b: c; } /* kept */\n  // kept\n`;\nconst t = `x ${ {a: 1}.a /* gone */ } ${`in ${y}`} // kept`; // gone\n";
        assert_eq!(
            strip_js(src),
            "const css = `\n  a { b: c; } /* kept */\n  // kept\n`;\nconst t = `x ${ {a: 1}.a } ${`in ${y}`} // kept`;\n"
        );
    }

    #[test]
    fn regular_expressions_are_told_from_division() {
        let src = "const r = /\\/\\/ [/*] x/g; // c\nconst d = a / b / c; // c\nif (x) return /a\\/b/.test(s);\nconst e = (a) / 2;\nconst s = text.replace(/\\{(\\w+)\\}/g, '');\n";
        assert_eq!(
            strip_js(src),
            "const r = /\\/\\/ [/*] x/g;\nconst d = a / b / c;\nif (x) return /a\\/b/.test(s);\nconst e = (a) / 2;\nconst s = text.replace(/\\{(\\w+)\\}/g, '');\n"
        );
    }

    #[test]
    fn a_block_comment_across_lines_still_ends_the_line() {
        // `a` and `b()` must stay two statements (automatic semicolon insertion).
        assert_eq!(strip_js("let x = a /*\n*/\nb()\n"), "let x = a\nb()\n");
        assert_eq!(strip_js("f(a,/* inline */b)"), "f(a, b)\n");
    }

    #[test]
    fn every_embedded_module_shrinks_and_stripping_twice_changes_nothing() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut seen = 0;
        for entry in walk(&web) {
            if entry.extension().and_then(|e| e.to_str()) != Some("js") {
                continue;
            }
            let src = std::fs::read_to_string(&entry).unwrap();
            let once = strip_js(&src);
            assert!(once.len() <= src.len(), "{}", entry.display());
            assert_eq!(strip_js(&once), once, "{}", entry.display());
            seen += 1;
        }
        assert!(seen > 10, "found {seen} modules under {}", web.display());
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "node_modules") {
                    files.extend(walk(&path));
                }
            } else {
                files.push(path);
            }
        }
        files
    }
}
