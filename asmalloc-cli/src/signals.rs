//! Ignoring ^C / ^\ while the program runs (the one `unsafe` of this crate).

/// Restores SIGINT and SIGQUIT handling when dropped.
pub(crate) struct IgnoreInterrupts {
    old_int: libc::sighandler_t,
    old_quit: libc::sighandler_t,
}

impl IgnoreInterrupts {
    pub(crate) fn new() -> IgnoreInterrupts {
        // SAFETY: setting a signal's disposition to SIG_IGN has no memory
        // preconditions. The caller sets it after spawning the program (an
        // ignored disposition survives exec) and restores it on drop.
        let (old_int, old_quit) = unsafe {
            (
                libc::signal(libc::SIGINT, libc::SIG_IGN),
                libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            )
        };
        IgnoreInterrupts { old_int, old_quit }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        // SAFETY: restores the dispositions saved in `new`.
        unsafe {
            libc::signal(libc::SIGINT, self.old_int);
            libc::signal(libc::SIGQUIT, self.old_quit);
        }
    }
}
