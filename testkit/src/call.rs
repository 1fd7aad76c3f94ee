//! One vocabulary of API calls, shared by every driver of a [`PhysHandlerApi`]: the
//! simulator's traces, the differential suite, the `api_robustness` fuzz target and the
//! hardening tests.
//!
//! A call names handler nodes and handler types by **creation index** (the `n`-th node
//! `create` / `dup` returned, the `n`-th type `register_type` returned) rather than by the
//! ids one side handed out, so the same call means the same thing on the production manager
//! and on the reference model, and stays meaningful when a shrinker deletes earlier calls.
//! An index past the end resolves to a value invalid on every side ([`Names`]).
//!
//! Guest-physical addresses are the type parameter `A`: concrete `u64`s in traces and tests,
//! or a fuzz target's "choice" type that [`ApiCall::map_addr`] resolves against the current
//! state (so fuzzer bytes land near handlers instead of on `NotFound`).
//!
//! [`apply`] runs a call on any side and returns an [`Outcome`] free of side-specific ids;
//! [`apply_checked`] also proves the robustness contract: a failed call changes nothing.

use pgmsim::{
    Error, HandlerId, HandlerInfo, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Hpa, Mmio2Handle, NodeInfo,
    OpResult, PageView, PhysHandlerApi,
};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A handler node by creation index.
pub type NodeIx = u32;
/// A handler type by registration index.
pub type TypeIx = u8;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Every operation of [`PhysHandlerApi`], valid or not. Serialised internally tagged by
/// `"op"` (the names the simulator's traces have always used).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, arbitrary::Arbitrary)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ApiCall<A = u64> {
    /// `register_type` (description "extra").
    RegisterType {
        /// Kind.
        kind: HandlerKind,
        /// Not-in-HM flag.
        not_in_hm: bool,
        /// Keep-lock flag.
        keep_lock: bool,
    },
    /// `create(type, user)`; the node gets the next creation index.
    Create {
        /// Type index.
        ty: TypeIx,
        /// User argument.
        user: u64,
        /// Give a description ("custom") instead of taking the type's.
        #[serde(default, skip_serializing_if = "is_false")]
        described: bool,
    },
    /// `dup(node)`; the copy gets the next creation index.
    Dup {
        /// Creation index of the source.
        h: NodeIx,
    },
    /// `register_ex(node, first, last)`.
    RegisterEx {
        /// Creation index.
        h: NodeIx,
        /// First byte.
        first: A,
        /// Last byte.
        last: A,
    },
    /// `register(first, last, type, user)`: creates a node that has no creation index (it is
    /// named by its start address from then on).
    Register {
        /// First byte.
        first: A,
        /// Last byte.
        last: A,
        /// Type index.
        ty: TypeIx,
        /// User argument.
        user: u64,
        /// Give a description ("custom") instead of taking the type's.
        #[serde(default, skip_serializing_if = "is_false")]
        described: bool,
    },
    /// `deregister_ex(node)`.
    DeregisterEx {
        /// Creation index.
        h: NodeIx,
    },
    /// `destroy(node)`.
    Destroy {
        /// Creation index.
        h: NodeIx,
    },
    /// `deregister(addr)`.
    Deregister {
        /// Handler start.
        addr: A,
    },
    /// `change_user_arg(addr, user)`.
    ChangeUserArg {
        /// Handler start.
        addr: A,
        /// New user argument.
        user: u64,
    },
    /// `reset(addr)`.
    Reset {
        /// Handler start.
        addr: A,
    },
    /// `reset_mmio2_with_bitmap(addr, bitmap, offset)` with a bitmap of `words` words, every
    /// word `fill` beforehand (so a stray clear shows as well as a stray set).
    #[serde(rename = "reset_bitmap")]
    ResetMmio2WithBitmap {
        /// Handler start.
        addr: A,
        /// Bitmap size in 64-bit words (at most [`MAX_BITMAP_WORDS`]).
        words: u32,
        /// Bit offset.
        offset: u32,
        /// Every word's value before the call.
        #[serde(default, skip_serializing_if = "is_zero")]
        fill: u64,
    },
    /// `page_temp_off(addr, page)`.
    #[serde(rename = "temp_off")]
    PageTempOff {
        /// Handler start.
        addr: A,
        /// Page.
        page: A,
    },
    /// `page_temp_off_ex(node, page)`.
    #[serde(rename = "temp_off_ex")]
    PageTempOffEx {
        /// Creation index (or a pinned id, see [`Names::pin`]).
        h: NodeIx,
        /// Page.
        page: A,
    },
    /// `page_alias_mmio2(addr, page, region, offset)`.
    #[serde(rename = "alias_mmio2")]
    PageAliasMmio2 {
        /// Handler start.
        addr: A,
        /// Page.
        page: A,
        /// MMIO2 handle value (1-based; 0 is never valid).
        region: u32,
        /// Byte offset into the region.
        offset: u64,
    },
    /// `page_alias_hc(addr, page, host)`.
    #[serde(rename = "alias_hc")]
    PageAliasHc {
        /// Handler start.
        addr: A,
        /// Page.
        page: A,
        /// Host page.
        host: Hpa,
    },
    /// `reset_aliased_page(page, accounting)`.
    #[serde(rename = "reset_aliased")]
    ResetAliasedPage {
        /// Page.
        page: A,
        /// With accounting.
        accounting: bool,
    },
    /// `vm_reset()`.
    VmReset,
    /// `is_registered(addr)`.
    IsRegistered {
        /// Any address.
        addr: A,
    },
    /// `is_all(addr)`.
    IsAll {
        /// Any address.
        addr: A,
    },
    /// `lookup(addr)`.
    Lookup {
        /// Any address.
        addr: A,
    },
    /// `handler_info(node)`.
    HandlerInfo {
        /// Creation index.
        h: NodeIx,
    },
    /// `type_config(type)`.
    TypeConfig {
        /// Type index.
        ty: TypeIx,
    },
    /// `page(addr)`.
    Page {
        /// Any address.
        addr: A,
    },
}

/// Largest bitmap a call allocates (64 K words = 4 Mi bits), so no call can exhaust memory.
pub const MAX_BITMAP_WORDS: u32 = 1 << 16;

impl<A> ApiCall<A> {
    /// The operation's name (statistics keys, coverage tables): the API method's name.
    pub fn name(&self) -> &'static str {
        match self {
            ApiCall::RegisterType { .. } => "register_type",
            ApiCall::Create { .. } => "create",
            ApiCall::Dup { .. } => "dup",
            ApiCall::RegisterEx { .. } => "register_ex",
            ApiCall::Register { .. } => "register",
            ApiCall::DeregisterEx { .. } => "deregister_ex",
            ApiCall::Destroy { .. } => "destroy",
            ApiCall::Deregister { .. } => "deregister",
            ApiCall::ChangeUserArg { .. } => "change_user_arg",
            ApiCall::Reset { .. } => "reset",
            ApiCall::ResetMmio2WithBitmap { .. } => "reset_mmio2_with_bitmap",
            ApiCall::PageTempOff { .. } => "page_temp_off",
            ApiCall::PageTempOffEx { .. } => "page_temp_off_ex",
            ApiCall::PageAliasMmio2 { .. } => "page_alias_mmio2",
            ApiCall::PageAliasHc { .. } => "page_alias_hc",
            ApiCall::ResetAliasedPage { .. } => "reset_aliased_page",
            ApiCall::VmReset => "vm_reset",
            ApiCall::IsRegistered { .. } => "is_registered",
            ApiCall::IsAll { .. } => "is_all",
            ApiCall::Lookup { .. } => "lookup",
            ApiCall::HandlerInfo { .. } => "handler_info",
            ApiCall::TypeConfig { .. } => "type_config",
            ApiCall::Page { .. } => "page",
        }
    }

    /// Whether the call may change state (queries never do).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            ApiCall::IsRegistered { .. }
                | ApiCall::IsAll { .. }
                | ApiCall::Lookup { .. }
                | ApiCall::HandlerInfo { .. }
                | ApiCall::TypeConfig { .. }
                | ApiCall::Page { .. }
        )
    }

    /// The same call with every guest-physical address resolved by `f`, in field order.
    pub fn map_addr<B>(self, mut f: impl FnMut(A) -> B) -> ApiCall<B> {
        use ApiCall::*;
        match self {
            RegisterType {
                kind,
                not_in_hm,
                keep_lock,
            } => RegisterType {
                kind,
                not_in_hm,
                keep_lock,
            },
            Create { ty, user, described } => Create { ty, user, described },
            Dup { h } => Dup { h },
            RegisterEx { h, first, last } => {
                let first = f(first);
                RegisterEx {
                    h,
                    first,
                    last: f(last),
                }
            }
            Register {
                first,
                last,
                ty,
                user,
                described,
            } => {
                let first = f(first);
                Register {
                    first,
                    last: f(last),
                    ty,
                    user,
                    described,
                }
            }
            DeregisterEx { h } => DeregisterEx { h },
            Destroy { h } => Destroy { h },
            Deregister { addr } => Deregister { addr: f(addr) },
            ChangeUserArg { addr, user } => ChangeUserArg { addr: f(addr), user },
            Reset { addr } => Reset { addr: f(addr) },
            ResetMmio2WithBitmap {
                addr,
                words,
                offset,
                fill,
            } => ResetMmio2WithBitmap {
                addr: f(addr),
                words,
                offset,
                fill,
            },
            PageTempOff { addr, page } => {
                let addr = f(addr);
                PageTempOff { addr, page: f(page) }
            }
            PageTempOffEx { h, page } => PageTempOffEx { h, page: f(page) },
            PageAliasMmio2 {
                addr,
                page,
                region,
                offset,
            } => {
                let addr = f(addr);
                PageAliasMmio2 {
                    addr,
                    page: f(page),
                    region,
                    offset,
                }
            }
            PageAliasHc { addr, page, host } => {
                let addr = f(addr);
                PageAliasHc {
                    addr,
                    page: f(page),
                    host,
                }
            }
            ResetAliasedPage { page, accounting } => ResetAliasedPage {
                page: f(page),
                accounting,
            },
            VmReset => VmReset,
            IsRegistered { addr } => IsRegistered { addr: f(addr) },
            IsAll { addr } => IsAll { addr: f(addr) },
            Lookup { addr } => Lookup { addr: f(addr) },
            HandlerInfo { h } => HandlerInfo { h },
            TypeConfig { ty } => TypeConfig { ty },
            Page { addr } => Page { addr: f(addr) },
        }
    }
}

/// The node and type ids one side handed out, in creation order: what creation indices mean
/// on that side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Handler ids in creation order (freed ones stay, as stale ids).
    pub nodes: Vec<HandlerId>,
    /// Type handles in registration order.
    pub types: Vec<HandlerTypeHandle>,
    /// Ids pinned by [`Names::pin`], named by [`PINNED`]` | k` (`None`: a free slot).
    pub pinned: Vec<Option<HandlerId>>,
}

/// The bit that marks a node index as naming a pinned id rather than a creation index.
pub const PINNED: NodeIx = 1 << 31;

impl Names {
    /// The id of node `h`; past the end, an id no side ever issues.
    pub fn node(&self, h: NodeIx) -> HandlerId {
        let found = if h & PINNED != 0 {
            self.pinned.get((h & !PINNED) as usize).copied().flatten()
        } else {
            self.nodes.get(h as usize).copied()
        };
        found.unwrap_or(HandlerId(0xdead_0000_0000_0000 | h as u64))
    }

    /// Names an id some side looked up itself (a handler a callback was dispatched for,
    /// which may never have had a creation index), without shifting creation indices. The
    /// lowest free pinned slot is reused, so pins cost no memory over a long run.
    pub fn pin(&mut self, id: HandlerId) -> NodeIx {
        let k = match self.pinned.iter().position(Option::is_none) {
            Some(k) => {
                self.pinned[k] = Some(id);
                k
            }
            None => {
                self.pinned.push(Some(id));
                self.pinned.len() - 1
            }
        };
        PINNED | k as NodeIx
    }

    /// Frees a pinned name.
    pub fn unpin(&mut self, h: NodeIx) {
        if let Some(slot) = self.pinned.get_mut((h & !PINNED) as usize) {
            *slot = None;
        }
    }

    /// The handle of type `t`; past the end, alternately the first type's slot with flipped
    /// check bits (must be refused, not resolved by slot) and a handle no side issues.
    pub fn ty(&self, t: TypeIx) -> HandlerTypeHandle {
        if let Some(&h) = self.types.get(t as usize) {
            return h;
        }
        let past = t as usize - self.types.len();
        match self.types.first() {
            Some(first) if past.is_multiple_of(2) => HandlerTypeHandle(first.0 ^ 0x100),
            _ => HandlerTypeHandle(0x5eed_0000_0000_0000 | t as u64),
        }
    }

    /// The registration index of a handle this side issued.
    pub fn type_index(&self, handle: HandlerTypeHandle) -> Option<TypeIx> {
        self.types.iter().position(|&h| h == handle).map(|i| i as TypeIx)
    }

    /// A handler's fields with its type named by index, comparable across sides.
    pub fn view(&self, info: &HandlerInfo) -> HandlerView {
        HandlerView {
            key: info.key,
            key_last: info.key_last,
            page_count: info.page_count,
            aliased_pages: info.aliased_pages,
            temp_off_pages: info.temp_off_pages,
            ty: self.type_index(info.ty),
            kind: info.kind,
            user: info.user,
            description: info.description.clone(),
        }
    }

    /// Whether two sides' handlers are the same handler: every field equal, the types by
    /// registration index (`self` names `a`'s side, `other` names `b`'s).
    pub fn same_handler(&self, a: &HandlerInfo, other: &Names, b: &HandlerInfo) -> bool {
        (
            a.key,
            a.key_last,
            a.page_count,
            a.aliased_pages,
            a.temp_off_pages,
            a.kind,
            a.user,
        ) == (
            b.key,
            b.key_last,
            b.page_count,
            b.aliased_pages,
            b.temp_off_pages,
            b.kind,
            b.user,
        ) && a.description == b.description
            && self.type_index(a.ty) == other.type_index(b.ty)
    }

    /// A node's fields with its type named by index.
    pub fn node_view(&self, info: &NodeInfo) -> NodeView {
        NodeView {
            ty: self.type_index(info.ty),
            kind: info.kind,
            user: info.user,
            description: info.description.clone(),
            registered: info.registered.as_ref().map(|h| self.view(h)),
        }
    }
}

/// [`HandlerInfo`] with the type named by registration index: equal on every side that
/// agrees, whatever handle values each issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandlerView {
    /// First byte.
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// Pages touched.
    pub page_count: u32,
    /// Aliased pages.
    pub aliased_pages: u32,
    /// Temporarily-off pages.
    pub temp_off_pages: u32,
    /// Type index (`None`: a handle this side's names do not know).
    pub ty: Option<TypeIx>,
    /// Kind.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
}

/// [`NodeInfo`] with the type named by registration index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeView {
    /// Type index.
    pub ty: Option<TypeIx>,
    /// Kind.
    pub kind: HandlerKind,
    /// User argument.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
    /// The registered handler, if any.
    pub registered: Option<HandlerView>,
}

/// What a call answered, free of side-specific ids and handles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A status-returning operation.
    Status(OpResult),
    /// `create` / `dup`: whether a node was created (its id went to [`Names`]).
    Created(Result<(), Error>),
    /// `register_type`: the slot-free answer (its handle went to [`Names`]).
    TypeRegistered(Result<(), Error>),
    /// `reset_mmio2_with_bitmap` and the bitmap afterwards.
    Bitmap(OpResult, Vec<u64>),
    /// `is_registered`.
    Registered(bool),
    /// `is_all`.
    IsAll(Result<bool, Error>),
    /// `lookup`.
    Lookup(Option<HandlerView>),
    /// `handler_info`.
    Info(Result<NodeView, Error>),
    /// `type_config`.
    TypeConfig(Result<HandlerTypeConfig, Error>),
    /// `page`, without the platform-owned NEM state bits.
    Page(Option<PageView>),
}

impl Outcome {
    /// The error, if the call failed.
    pub fn error(&self) -> Option<Error> {
        match self {
            Outcome::Status(Err(e))
            | Outcome::Created(Err(e))
            | Outcome::TypeRegistered(Err(e))
            | Outcome::Bitmap(Err(e), _) => Some(*e),
            _ => None,
        }
    }

    /// The status of a status-returning call.
    pub fn status(&self) -> Option<OpResult> {
        match self {
            Outcome::Status(r) | Outcome::Bitmap(r, _) => Some(*r),
            Outcome::Created(r) | Outcome::TypeRegistered(r) => Some(r.map(|()| pgmsim::Status::Success)),
            _ => None,
        }
    }

    /// A short name of the result for statistics and coverage: `Success`, an informational
    /// status, an error's name, or `answer` for queries.
    pub fn result_name(&self) -> &'static str {
        match self.status() {
            Some(Ok(s)) => s.name(),
            Some(Err(e)) => e.name(),
            None => "answer",
        }
    }
}

/// Applies `call` to `api`, resolving names through (and recording new ids in) `names`.
pub fn apply(api: &mut dyn PhysHandlerApi, names: &mut Names, call: &ApiCall) -> Outcome {
    use ApiCall::*;
    let description = |described: bool| described.then_some("custom");
    match *call {
        RegisterType {
            kind,
            not_in_hm,
            keep_lock,
        } => {
            let mut config = HandlerTypeConfig::new(kind, "extra");
            config.not_in_hm = not_in_hm;
            config.keep_lock = keep_lock;
            let r = api.register_type(config);
            Outcome::TypeRegistered(r.map(|h| names.types.push(h)))
        }
        Create { ty, user, described } => {
            let r = api.create(names.ty(ty), user, description(described));
            Outcome::Created(r.map(|id| names.nodes.push(id)))
        }
        Dup { h } => {
            let r = api.dup(names.node(h));
            Outcome::Created(r.map(|id| names.nodes.push(id)))
        }
        RegisterEx { h, first, last } => Outcome::Status(api.register_ex(names.node(h), first, last)),
        Register {
            first,
            last,
            ty,
            user,
            described,
        } => Outcome::Status(api.register(first, last, names.ty(ty), user, description(described))),
        DeregisterEx { h } => Outcome::Status(api.deregister_ex(names.node(h))),
        Destroy { h } => Outcome::Status(api.destroy(names.node(h))),
        Deregister { addr } => Outcome::Status(api.deregister(addr)),
        ChangeUserArg { addr, user } => Outcome::Status(api.change_user_arg(addr, user)),
        Reset { addr } => Outcome::Status(api.reset(addr)),
        ResetMmio2WithBitmap {
            addr,
            words,
            offset,
            fill,
        } => {
            let mut bitmap = vec![fill; words.min(MAX_BITMAP_WORDS) as usize];
            let r = api.reset_mmio2_with_bitmap(addr, &mut bitmap, offset);
            Outcome::Bitmap(r, bitmap)
        }
        PageTempOff { addr, page } => Outcome::Status(api.page_temp_off(addr, page)),
        PageTempOffEx { h, page } => Outcome::Status(api.page_temp_off_ex(names.node(h), page)),
        PageAliasMmio2 {
            addr,
            page,
            region,
            offset,
        } => Outcome::Status(api.page_alias_mmio2(addr, page, Mmio2Handle(region), offset)),
        PageAliasHc { addr, page, host } => Outcome::Status(api.page_alias_hc(addr, page, host)),
        ResetAliasedPage { page, accounting } => Outcome::Status(api.reset_aliased_page(page, accounting)),
        VmReset => Outcome::Status(api.vm_reset()),
        IsRegistered { addr } => Outcome::Registered(api.is_registered(addr)),
        IsAll { addr } => Outcome::IsAll(api.is_all(addr)),
        Lookup { addr } => Outcome::Lookup(api.lookup(addr).map(|h| names.view(&h))),
        HandlerInfo { h } => Outcome::Info(api.handler_info(names.node(h)).map(|i| names.node_view(&i))),
        TypeConfig { ty } => Outcome::TypeConfig(api.type_config(names.ty(ty))),
        Page { addr } => Outcome::Page(api.page(addr).map(PageView::from)),
    }
}

/// What a failed call must leave exactly as it was, captured before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    digest: u64,
    live: u32,
    handlers: Vec<HandlerInfo>,
}

impl Before {
    /// Captures `api`'s state; `digest` is the side's digest of its whole state (the
    /// production manager's `state_digest`, or any hash of a model's state).
    pub fn capture<S: PhysHandlerApi + ?Sized>(api: &S, digest: &dyn Fn(&S) -> u64) -> Before {
        Before {
            digest: digest(api),
            live: api.live_handlers(),
            handlers: api.handlers(),
        }
    }

    /// `Err` naming what changed since the capture. The handler list and the live count are
    /// compared besides the digest, so a digest that stopped seeing changes cannot hide one.
    pub fn unchanged<S: PhysHandlerApi + ?Sized>(&self, api: &S, digest: &dyn Fn(&S) -> u64) -> Result<(), String> {
        if api.live_handlers() != self.live {
            return Err(format!("live handlers {} -> {}", self.live, api.live_handlers()));
        }
        if api.handlers() != self.handlers {
            return Err("the handler list changed".into());
        }
        if digest(api) != self.digest {
            return Err("the state digest changed".into());
        }
        Ok(())
    }
}

/// [`apply`], then the robustness contract: a call that failed changed nothing (and a
/// failed bitmap reset left the bitmap as it was). `Err` describes the broken promise.
pub fn apply_checked<S: PhysHandlerApi>(
    api: &mut S,
    names: &mut Names,
    call: &ApiCall,
    digest: &dyn Fn(&S) -> u64,
) -> Result<Outcome, String> {
    let before = call.mutates().then(|| Before::capture(api, digest));
    let outcome = apply(api, names, call);
    if let (Some(before), Some(e)) = (before, outcome.error()) {
        before
            .unchanged(api, digest)
            .map_err(|what| format!("{call:?} failed with {e:?} but changed the state: {what}"))?;
        if let (Outcome::Bitmap(_, bitmap), ApiCall::ResetMmio2WithBitmap { fill, .. }) = (&outcome, call) {
            if bitmap.iter().any(|w| w != fill) {
                return Err(format!("{call:?} failed with {e:?} but wrote the bitmap"));
            }
        }
    }
    Ok(outcome)
}
