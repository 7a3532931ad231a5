//! glibc's own heap statistics (`mallinfo2`, `malloc_info`, `malloc_stats`),
//! shown when their feature bits are on. They describe glibc's heap; the
//! jemalloc builds report jemalloc's statistics instead.

use std::io::{self, Write};

/// `mallinfo2()` fields, one line.
pub(crate) fn write_mallinfo(w: &mut dyn Write) -> io::Result<()> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
    let m = unsafe { libc::mallinfo2() };
    writeln!(
        w,
        "  mallinfo: arena {} ordblks {} smblks {} hblks {} hblkhd {} usmblks {} fsmblks {} uordblks {} fordblks {} keepcost {}",
        m.arena,
        m.ordblks,
        m.smblks,
        m.hblks,
        m.hblkhd,
        m.usmblks,
        m.fsmblks,
        m.uordblks,
        m.fordblks,
        m.keepcost
    )
}

/// `malloc_info(0, …)` XML, captured through a memory stream.
pub(crate) fn write_malloc_info(w: &mut dyn Write) -> io::Result<()> {
    let mut buf: *mut libc::c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: both out-pointers are valid; the stream is closed below and
    // the buffer freed with the C allocator that made it.
    let text = unsafe {
        let stream = libc::open_memstream(&mut buf, &mut len);
        if stream.is_null() {
            return writeln!(w, "  malloc_info: unavailable (open_memstream failed)");
        }
        libc::malloc_info(0, stream);
        libc::fclose(stream);
        let text = if buf.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(buf.cast::<u8>(), len)).into_owned()
        };
        libc::free(buf.cast());
        text
    };
    writeln!(w, "  malloc_info:")?;
    for line in text.lines() {
        writeln!(w, "    {line}")?;
    }
    Ok(())
}

/// `malloc_stats()` writes to stderr itself; we flush ours first so the two
/// do not interleave.
pub(crate) fn print_malloc_stats(w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "  malloc_stats: (printed by glibc to stderr)")?;
    w.flush()?;
    // SAFETY: malloc_stats takes no arguments.
    unsafe { libc::malloc_stats() };
    Ok(())
}
