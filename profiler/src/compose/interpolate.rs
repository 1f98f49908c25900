//! Compose's variable interpolation in the values roprof runs a service
//! with (the hardened file keeps the text as written).

/// Compose's interpolation: `$$` is a `$`, `${VAR}`, `${VAR:-default}`,
/// `${VAR-default}` and `$VAR` are looked up; `${VAR:?message}` fails when
/// unset.
pub fn interpolate(s: &str, var: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{s}`"))?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let (name, op, arg) = match expr.find([':', '-', '?']) {
                Some(j) => {
                    let op_len = if expr[j..].starts_with(':') { 2 } else { 1 };
                    let op = expr.get(j..j + op_len).unwrap_or("");
                    (&expr[..j], op, &expr[(j + op_len).min(expr.len())..])
                }
                None => (expr, "", ""),
            };
            let val = var(name);
            match (op, val) {
                (":-", Some(v)) if v.is_empty() => out.push_str(arg),
                (":-" | "-", None) => out.push_str(arg),
                (":?", Some(v)) if v.is_empty() => return Err(format!("{name}: {arg}")),
                (":?" | "?", None) => return Err(format!("{name} is not set: {arg}")),
                (_, Some(v)) => out.push_str(&v),
                ("", None) => {}
                (op, None) => return Err(format!("unsupported `{op}` in `${{{expr}}}`")),
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(&var(&rest[..end]).unwrap_or_default());
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
