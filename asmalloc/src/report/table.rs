//! Aligned text columns, for the reports of the runtime and of the
//! `asmalloc` command.

use std::io::{self, Write};

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Writes `header` and `rows` as columns two spaces apart, each as wide as
/// its widest cell, every line starting with `indent`. The last column is
/// not padded when it is left-aligned.
pub fn write_table(
    w: &mut dyn Write,
    indent: &str,
    header: &[&str],
    align: &[Align],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.len());
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
                Align::Left => {
                    line.push_str(cell);
                    if i + 1 < row.len() {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            "  ",
            &["id", "name", "bytes"],
            &[Align::Right, Align::Left, Align::Right],
            &[
                vec!["7".into(), "cache".into(), "1024".into()],
                vec!["12".into(), "x".into(), "5".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  id  name   bytes\n   7  cache   1024\n  12  x          5\n"
        );
    }
}
