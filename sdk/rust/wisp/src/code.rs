//! Hot code reload: versions of the program, and moving a running process
//! onto the current one (the host's `wisp_code` namespace, docs/abi.md).
//!
//! The program a run starts with is version 1; `wisp reload app.wasm` from
//! another terminal (or [`load`] from a process) loads the next version,
//! which becomes *current*. Processes keep running the code they run until
//! they move. A [`Server`](crate::Server) moves by itself, between two
//! messages, when its type implements
//! [`Upgrade`](crate::server::Upgrade) and the program lists it in
//! [`upgradable!`](crate::upgradable); a [`Supervisor`](crate::Supervisor)
//! moves its children one by one, then itself (see
//! [`server`](crate::server) and [`supervisor`](crate::supervisor)).
//!
//! How a process moves (the host's contract): the old code calls
//! `wisp_code.upgrade` with its state as bytes; the host makes a new
//! instance of the current version and calls its export
//! `wisp_code_change(old_vsn, len)` there, nested in that call; that
//! function reads the state (`spawn_arg`), rebuilds it, and returns the
//! table index of a function `fn()` in which the process goes on (same
//! pid, mailbox, links, monitors, names, timers, sockets). A number <= 0,
//! a trap or an exit is a refusal: the new instance is dropped and the old
//! code goes on, `wisp_code.upgrade` returning the reason.
//!
//! This crate's side of it, for servers and supervisors:
//!
//! - The state travels as a [`Handoff`]: the name of the server's type
//!   (`std::any::type_name`, the same key scheme as message types: stable
//!   while the type keeps its name and path in the same crate), the old
//!   code's [`Upgrade::VSN`](crate::server::Upgrade::VSN), the server's
//!   context, and its saved state ([`Handover::save`](crate::server::Handover::save)).
//! - `wisp::upgradable!(Kv, Conn)` (in the program, once) generates the
//!   export `wisp_code_change`, which calls [`code_change`] with the table
//!   of the types this version can take over: one [`Upgradable`] entry each
//!   (plus the crate's supervisor). A type that is not in the table, a
//!   state that does not decode, or an `Err` from the type's
//!   [`Upgrade::upgrade`](crate::server::Upgrade::upgrade) is a refusal
//!   whose text reaches the old code: the new instance sends it to its own
//!   pid under an internal tag just before refusing (the mailbox is the
//!   process's, shared by both instances), and the old code takes it out.
//!   A panic there is a trap: the runtime's text ("wisp_code_change
//!   trapped: unreachable in ...") reaches the old code, the panic's own
//!   text the new instance's stderr.
//! - The function to go on in is `resume_upgraded`: `code_change` leaves
//!   the rebuilt process (a closure running the server loop) in this
//!   instance's memory, and the host calls it by table index (not as an
//!   export: wasm-ld wraps exports in the module's constructors, which ran
//!   already for `wisp_code_change`).
//! - The same macro registers the table in every instance of the program,
//!   through a constructor (`.init_array`, which wasm-ld runs before any
//!   export): that is how a server loop in the *old* code learns that its
//!   type can move (`upgradable_of`), with no bound on `Server`.

use std::any::TypeId;
use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::message::{receive_raw, ReplyTo};
use crate::process::{self_pid, Pid};
use crate::sys;

/// Why a [`load`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a module wisp runs, or it exports no `wisp_code_change` (a Rust
    /// program gets one from [`upgradable!`](crate::upgradable)).
    /// `wisp reload` says which, with the compiler's message.
    Invalid,
    /// These bytes are a version already: its number.
    Exists(u32),
    /// Processes (other than the main one) still run a version older than
    /// the current one: a new version would make theirs the third, and two
    /// at most may run, as in Erlang. Move them first, or load with
    /// `wisp reload --purge`, which kills them.
    Limit,
    /// Over 256 MiB.
    TooBig,
    /// This process may not load code (its capabilities).
    Denied,
    /// The host could not allocate.
    NoMemory,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid => f.write_str(
                "not a module wisp runs, or it exports no wisp_code_change (wisp::upgradable! makes it)",
            ),
            LoadError::Exists(v) => write!(f, "those bytes are version {v} already"),
            LoadError::Limit => f.write_str(
                "processes still run a version older than the current one (two versions at most): move them \
                 first, or reload with wisp reload --purge",
            ),
            LoadError::TooBig => f.write_str("the module is larger than 256 MiB"),
            LoadError::Denied => f.write_str("not allowed to load code by the process's capabilities"),
            LoadError::NoMemory => f.write_str("the host is out of memory"),
        }
    }
}
impl std::error::Error for LoadError {}

/// Load `module` (a `.wasm` file's bytes) as the next version of the
/// program; it becomes current, and its number is returned. The caller
/// parks while it compiles. What `wisp reload` does from another terminal.
pub fn load(module: &[u8]) -> Result<u32, LoadError> {
    let len = u32::try_from(module.len()).map_err(|_| LoadError::TooBig)?;
    let mut vsn = 0u32;
    match unsafe { sys::code_load(module.as_ptr(), len, &mut vsn) } {
        sys::OK => Ok(vsn),
        sys::EEXIST => Err(LoadError::Exists(vsn)),
        sys::ELIMIT => Err(LoadError::Limit),
        sys::ETOOBIG => Err(LoadError::TooBig),
        sys::EPERM => Err(LoadError::Denied),
        sys::ENOMEM => Err(LoadError::NoMemory),
        _ => Err(LoadError::Invalid),
    }
}

/// The version the calling process runs (1 for the program the run
/// started with; 0 for a module another node shipped).
pub fn version() -> u32 {
    unsafe { sys::code_version(sys::CODE_MINE) as u32 }
}

/// The current version: the last one loaded.
pub fn current() -> u32 {
    unsafe { sys::code_version(sys::CODE_CURRENT) as u32 }
}

/// Hear of new versions (a message with tag [`sys::TAG_CODE`] from pid 0,
/// the number as u32 LE) from now on.
pub(crate) fn watch() {
    // (Fails only when the host cannot allocate the watcher list: the
    // process then does not hear of versions, as before.)
    let _ = unsafe { sys::code_watch(1) };
}

/// Hear of them no more. (The host drops a dead watcher only when it next
/// tells them all: a server that ends says so, so that a run with many
/// short-lived servers, one per connection, keeps the list short.)
pub(crate) fn unwatch() {
    let _ = unsafe { sys::code_watch(0) };
}

/// Why a server (or supervisor) did not move onto a new version. In every
/// case it goes on with its old code and state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeError {
    /// Its type is not listed in the program's
    /// [`upgradable!`](crate::upgradable), so its code does not know how
    /// to save it (asked by [`ServerRef::upgrade`](crate::ServerRef::upgrade)).
    NotUpgradable,
    /// [`Handover::save`](crate::server::Handover::save) returned this error.
    Save(String),
    /// The saved state could not be encoded.
    Encode(String),
    /// The saved state is larger than the message limit.
    TooBig,
    /// The host could not allocate.
    NoMemory,
    /// The new version refused the state, saying why: its
    /// [`Upgrade::upgrade`](crate::server::Upgrade::upgrade) returned this
    /// error, or it does not list the type in its `upgradable!`, or it
    /// cannot read the state.
    Refused(String),
    /// The new version could not take over: its `wisp_code_change`
    /// trapped (a panic: its text is on stderr), exited, could not be
    /// instantiated, or does not exist; the runtime's words.
    Failed(String),
    /// A plain process (a supervisor's `ChildSpec::worker`): its function
    /// has no name by which a new version could start it again, so it
    /// keeps its code, and pins its supervisor to its version.
    Plain,
    /// A supervisor's child did not move (for this reason): the children
    /// after it and the supervisor stay on their version.
    Child {
        /// The child's id.
        id: String,
        /// Why it did not move.
        error: Box<UpgradeError>,
    },
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::NotUpgradable => {
                f.write_str("its type is not listed in wisp::upgradable! (or does not implement Upgrade)")
            }
            UpgradeError::Save(e) => write!(f, "save failed: {e}"),
            UpgradeError::Encode(e) => write!(f, "cannot encode the saved state: {e}"),
            UpgradeError::TooBig => f.write_str("the saved state is larger than the message limit"),
            UpgradeError::NoMemory => f.write_str("the host is out of memory"),
            UpgradeError::Refused(e) => write!(f, "the new version refused the state: {e}"),
            UpgradeError::Failed(e) => write!(f, "the new version could not take over: {e}"),
            UpgradeError::Plain => f.write_str(
                "a plain process (ChildSpec::worker) cannot move: a new version cannot find its function (make \
                 it a server whose type wisp::upgradable! lists)",
            ),
            UpgradeError::Child { id, error } => write!(f, "child {id}: {error}"),
        }
    }
}
impl std::error::Error for UpgradeError {}

/// What moves from the old code to the new, besides the process itself:
/// the crate writes it, after [`MAGIC`], as the state of
/// `wisp_code.upgrade`.
#[doc(hidden)]
#[derive(Serialize, Deserialize)]
pub struct Handoff {
    /// The key of the type that moves: its `type_name` ([`Upgradable::name`];
    /// the crate's supervisor: `SUPERVISOR_KIND`).
    pub(crate) kind: String,
    /// The old code's `Upgrade::VSN`.
    pub(crate) vsn: u32,
    /// Who started it (servers: their `Context::parent`).
    pub(crate) parent: Pid,
    /// A server's earlier pids (migration), oldest first.
    pub(crate) former: Vec<Pid>,
    /// The TCP stream a server holds (`Context::set_stream`): its fd stays
    /// open across the move, as the process keeps its sockets.
    pub(crate) stream: Option<i32>,
    /// Who asked for the move ([`ServerRef::upgrade`](crate::ServerRef::upgrade),
    /// a supervisor), answered by the new code once it runs.
    pub(crate) reply: Option<ReplyTo>,
    /// The state's image: `Handover::Saved` (or the supervisor's own) in
    /// the crate's codec, apart from the rest so that it is read on its own.
    pub(crate) image: Vec<u8>,
}

/// The first bytes of a [`Handoff`]: "wup" and the format's version.
const MAGIC: [u8; 4] = *b"wup\x01";

/// The tag under which a new version tells the old one why it refused
/// (sent to the process's own pid: see the module's docs).
const TAG_REFUSAL: u64 = 10;

/// Move the calling process onto the current version with `h`. Returns
/// only if it goes on here: `None` if it runs the current version already,
/// else why not. On success the process goes on in the new version's
/// `resume_upgraded`, and this call's frames are gone (no destructor of
/// this instance runs again: a socket it owns stays open).
pub(crate) fn hand_over(h: &Handoff) -> Option<UpgradeError> {
    let mine = version();
    if mine == current() {
        return None;
    }
    if mine == 0 {
        return Some(UpgradeError::Failed("this process runs a module shipped by another node, no version".into()));
    }
    let mut bytes = MAGIC.to_vec();
    if let Err(e) = codec::encode_into(&mut bytes, h) {
        return Some(UpgradeError::Encode(e.0));
    }
    let Ok(len) = u32::try_from(bytes.len()) else { return Some(UpgradeError::TooBig) };
    // What this instance printed and has not written yet would be lost.
    let _ = std::io::stdout().flush();
    let mut why = [0u8; 320];
    let rc = unsafe { sys::code_upgrade(bytes.as_ptr(), len, why.as_mut_ptr(), why.len() as u32) };
    let why_text = || {
        let n = why.iter().position(|&b| b == 0).unwrap_or(why.len());
        String::from_utf8_lossy(&why[..n]).into_owned()
    };
    Some(match rc {
        sys::ETOOBIG => UpgradeError::TooBig,
        sys::ENOMEM => UpgradeError::NoMemory,
        // (ENOTFOUND: it became current between the check and the call.)
        sys::ENOTFOUND if version() == current() => return None,
        _ => match refusal() {
            Some(text) => UpgradeError::Refused(text),
            None => UpgradeError::Failed(why_text()),
        },
    })
}

/// The text a refusing new version sent this process, if it did.
fn refusal() -> Option<String> {
    let me = self_pid();
    let mut text = None;
    // Take every message under the tag: only the process itself can send
    // from its pid, and one from elsewhere is dropped.
    while let Ok(env) = receive_raw(&[TAG_REFUSAL], sys::NOWAIT) {
        if env.from == me {
            text = Some(String::from_utf8_lossy(&env.bytes).into_owned());
        }
    }
    text
}

/// One type a version can take over (see the module's docs). Made by
/// [`upgradable!`](crate::upgradable) through
/// [`server::upgradable`](crate::server::upgradable) and the crate's
/// supervisor; not for other uses.
#[doc(hidden)]
pub struct Upgradable {
    /// The type's id, by which an old server loop finds its entry.
    pub(crate) type_id: fn() -> TypeId,
    /// The key a [`Handoff`] names the type by.
    pub(crate) name: fn() -> &'static str,
    /// `Upgrade::AUTOMATIC`: moves by itself when a version becomes current.
    pub(crate) automatic: bool,
    /// Old side: move the process whose state and context these are (a
    /// server's `&mut S` and `&mut Context<S>`), answering `reply`; returns
    /// only if it goes on here.
    pub(crate) upgrade: fn(&mut dyn std::any::Any, &mut dyn std::any::Any, Option<ReplyTo>),
    /// New side: rebuild the process from a handoff; what to run then.
    pub(crate) resume: fn(Handoff) -> Result<Box<dyn FnOnce()>, String>,
    /// The table index of this version's function that starts a linked
    /// server of the type from its encoded `Arg` (supervisors' specs).
    pub(crate) starter: fn() -> u32,
}

/// The key of the crate's supervisor in a [`Handoff`] (no type's name).
pub(crate) const SUPERVISOR_KIND: &str = "wisp::supervisor";

/// The resumer of supervisors, as `upgradable!` passes it to [`code_change`].
type Resume = fn(Handoff) -> Result<Box<dyn FnOnce()>, String>;

/// The table `upgradable!` registered in this instance.
static TABLE: OnceLock<&'static [Upgradable]> = OnceLock::new();

/// Register the program's table (the constructor `upgradable!` generates
/// calls it; a second table is ignored: the macro is used once).
#[doc(hidden)]
pub fn register(table: &'static [Upgradable]) {
    let _ = TABLE.set(table);
}

/// Whether the program lists its upgradable types (`upgradable!`), so
/// that its new versions can take over servers and supervisors, and this
/// process runs a version of it (not a module another node shipped,
/// version 0, which never moves).
pub(crate) fn registered() -> bool {
    TABLE.get().is_some() && version() != 0
}

/// The entry of type `T` in the program's table, if it is listed.
pub(crate) fn upgradable_of<T: 'static>() -> Option<&'static Upgradable> {
    let id = TypeId::of::<T>();
    TABLE.get()?.iter().find(|u| (u.type_id)() == id)
}

/// The entry named `name` in the program's table.
pub(crate) fn upgradable_named(name: &str) -> Option<&'static Upgradable> {
    TABLE.get()?.iter().find(|u| (u.name)() == name)
}

thread_local! {
    /// What `resume_upgraded` runs: left by [`code_change`].
    static RESUME: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
}

/// The body of the `wisp_code_change` export `upgradable!` generates: take
/// over a process whose old code handed over `len` bytes (see the module's
/// docs). Returns the table index of `resume_upgraded`, or -1 after
/// sending the process the reason it refused.
#[doc(hidden)]
pub fn code_change(table: &'static [Upgradable], supervisor: Resume, _old_vsn: u32, len: u32) -> i32 {
    register(table);
    match take_over(table, supervisor, len) {
        Ok(run) => {
            RESUME.with(|r| *r.borrow_mut() = Some(run));
            let f: extern "C" fn() = resume_upgraded;
            f as usize as i32
        }
        Err(why) => {
            let _ = self_pid().send_raw(TAG_REFUSAL, why.as_bytes());
            -1
        }
    }
}

fn take_over(table: &'static [Upgradable], supervisor: Resume, len: u32) -> Result<Box<dyn FnOnce()>, String> {
    let mut bytes = vec![0u8; len as usize];
    let n = unsafe { sys::spawn_arg(bytes.as_mut_ptr(), len) };
    if n != len || bytes.get(..4) != Some(&MAGIC[..]) {
        return Err("the state was not handed over by a wisp crate server or supervisor (or by another \
                    version of the crate's format)"
            .into());
    }
    let h: Handoff = codec::decode(&bytes[4..]).map_err(|e| format!("cannot read the handed-over state: {e}"))?;
    if h.kind == SUPERVISOR_KIND {
        return supervisor(h);
    }
    let Some(entry) = table.iter().find(|u| (u.name)() == h.kind) else {
        let listed: Vec<&str> = table.iter().map(|u| (u.name)()).collect();
        return Err(format!(
            "this version cannot take over a {}: its wisp::upgradable! lists {:?} (a type keeps its key while it \
             keeps its name, module path and crate)",
            h.kind, listed
        ));
    };
    (entry.resume)(h)
}

/// Where a process goes on after [`code_change`] took it over: runs what
/// it left. Called by the host by table index, in the new instance.
extern "C" fn resume_upgraded() {
    match RESUME.with(|r| r.borrow_mut().take()) {
        Some(run) => run(),
        None => panic!("wisp: resumed after an upgrade with nothing to run"),
    }
}

