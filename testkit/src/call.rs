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

use pgmsim::{HandlerKind, HandlerTypeConfig, Hpa, Mmio2Handle, PageView, PhysHandlerApi, Status};
use serde::{Deserialize, Serialize};

pub use crate::names::{HandlerView, Names, NodeView, PINNED};
pub use crate::outcome::{apply_checked, Before, Outcome};
pub use crate::spec::{CallSpec, Footprint, Operand};

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
/// `"op"` (the names the simulator's traces have always used); guest-physical addresses,
/// host addresses and MMIO2 byte offsets as `"0x…"` strings (numbers are read too), unknown
/// fields refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, arbitrary::Arbitrary)]
#[serde(
    tag = "op",
    rename_all = "snake_case",
    deny_unknown_fields,
    bound(serialize = "A: crate::hex::HexAddr", deserialize = "A: crate::hex::HexAddr")
)]
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
        #[serde(with = "crate::hex::addr")]
        first: A,
        /// Last byte.
        #[serde(with = "crate::hex::addr")]
        last: A,
    },
    /// `register(first, last, type, user)`: creates a node that has no creation index (it is
    /// named by its start address from then on).
    Register {
        /// First byte.
        #[serde(with = "crate::hex::addr")]
        first: A,
        /// Last byte.
        #[serde(with = "crate::hex::addr")]
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
        #[serde(with = "crate::hex::addr")]
        addr: A,
    },
    /// `change_user_arg(addr, user)`.
    ChangeUserArg {
        /// Handler start.
        #[serde(with = "crate::hex::addr")]
        addr: A,
        /// New user argument.
        user: u64,
    },
    /// `reset(addr)`.
    Reset {
        /// Handler start.
        #[serde(with = "crate::hex::addr")]
        addr: A,
    },
    /// `reset_mmio2_with_bitmap(addr, bitmap, offset)` with a bitmap of `words` words, every
    /// word `fill` beforehand (so a stray clear shows as well as a stray set).
    #[serde(rename = "reset_bitmap")]
    ResetMmio2WithBitmap {
        /// Handler start.
        #[serde(with = "crate::hex::addr")]
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
        #[serde(with = "crate::hex::addr")]
        addr: A,
        /// Page.
        #[serde(with = "crate::hex::addr")]
        page: A,
    },
    /// `page_temp_off_ex(node, page)`.
    #[serde(rename = "temp_off_ex")]
    PageTempOffEx {
        /// Creation index (or a pinned id, see [`Names::pin`]).
        h: NodeIx,
        /// Page.
        #[serde(with = "crate::hex::addr")]
        page: A,
    },
    /// `page_alias_mmio2(addr, page, region, offset)`.
    #[serde(rename = "alias_mmio2")]
    PageAliasMmio2 {
        /// Handler start.
        #[serde(with = "crate::hex::addr")]
        addr: A,
        /// Page.
        #[serde(with = "crate::hex::addr")]
        page: A,
        /// MMIO2 handle value (1-based; 0 is never valid).
        region: u32,
        /// Byte offset into the region.
        #[serde(with = "crate::hex::u64")]
        offset: u64,
    },
    /// `page_alias_hc(addr, page, host)`.
    #[serde(rename = "alias_hc")]
    PageAliasHc {
        /// Handler start.
        #[serde(with = "crate::hex::addr")]
        addr: A,
        /// Page.
        #[serde(with = "crate::hex::addr")]
        page: A,
        /// Host page.
        #[serde(with = "crate::hex::hpa")]
        host: Hpa,
    },
    /// `reset_aliased_page(page, accounting)`.
    #[serde(rename = "reset_aliased")]
    ResetAliasedPage {
        /// Page.
        #[serde(with = "crate::hex::addr")]
        page: A,
        /// With accounting.
        accounting: bool,
    },
    /// `vm_reset()`.
    VmReset,
    /// `is_registered(addr)`.
    IsRegistered {
        /// Any address.
        #[serde(with = "crate::hex::addr")]
        addr: A,
    },
    /// `is_all(addr)`.
    IsAll {
        /// Any address.
        #[serde(with = "crate::hex::addr")]
        addr: A,
    },
    /// `lookup(addr)`.
    Lookup {
        /// Any address.
        #[serde(with = "crate::hex::addr")]
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
        #[serde(with = "crate::hex::addr")]
        addr: A,
    },
}

/// Builds one [`CallSpec`] row (the fields every row sets, in a fixed order).
const fn row(
    name: &'static str,
    tag: u64,
    family: &'static str,
    mutates: bool,
    footprint: Footprint,
    results: &'static [&'static str],
) -> CallSpec {
    CallSpec {
        name,
        tag,
        family,
        mutates,
        creates_node: false,
        footprint,
        resync_status: None,
        results,
    }
}

const fn creating(spec: CallSpec) -> CallSpec {
    CallSpec {
        creates_node: true,
        ..spec
    }
}

const fn resyncs(spec: CallSpec, status: Status) -> CallSpec {
    CallSpec {
        resync_status: Some(status),
        ..spec
    }
}

/// Every operation of the vocabulary, in [`ApiCall`] declaration order (coverage tables
/// count them in this order). Tags 0-14 are the calls the first trace format knew; the
/// simulator's own steps took 15-21; calls added later continue from 22 (the next free tag
/// is 32: 30 and 31 head a concurrent run's steps and schedule).
pub const CALLS: [CallSpec; 23] = {
    use Footprint::*;
    [
        // §3.5
        row(
            "register_type",
            22,
            "ex_api",
            true,
            Nothing,
            &["Success", "OutOfResources"],
        ),
        // §3.6, §3.7
        creating(row(
            "create",
            1,
            "ex_api",
            true,
            Nothing,
            &["Success", "InvalidHandle", "OutOfResources"],
        )),
        creating(row(
            "dup",
            2,
            "ex_api",
            true,
            Nothing,
            &["Success", "InvalidHandle", "OutOfResources"],
        )),
        // §3.8 (GcPhysAliased: the platform resynced while raising)
        resyncs(
            row(
                "register_ex",
                3,
                "ex_api",
                true,
                Operands,
                &[
                    "Success",
                    "GcPhysAliased",
                    "InvalidHandle",
                    "WrongOrder",
                    "InvalidParameter",
                    "NoRamRange",
                    "Conflict",
                ],
            ),
            Status::GcPhysAliased,
        ),
        // §3.9
        resyncs(
            row(
                "register",
                0,
                "register",
                true,
                Operands,
                &[
                    "Success",
                    "GcPhysAliased",
                    "InvalidHandle",
                    "OutOfResources",
                    "InvalidParameter",
                    "NoRamRange",
                    "Conflict",
                ],
            ),
            Status::GcPhysAliased,
        ),
        // §3.10 - §3.14
        row(
            "deregister_ex",
            4,
            "ex_api",
            true,
            Operands,
            &["Success", "InvalidHandle", "NotFound"],
        ),
        row(
            "destroy",
            5,
            "ex_api",
            true,
            Nothing,
            &["Success", "InvalidHandle", "WrongOrder"],
        ),
        row("deregister", 6, "deregister", true, Operands, &["Success", "NotFound"]),
        row("change_user_arg", 7, "query", true, Nothing, &["Success", "NotFound"]),
        row("reset", 8, "reset", true, Operands, &["Success", "NotFound"]),
        // §3.15
        resyncs(
            row(
                "reset_mmio2_with_bitmap",
                9,
                "reset",
                true,
                Operands,
                &["Success", "SyncCr3", "NotFound", "WrongType", "InvalidParameter"],
            ),
            Status::SyncCr3,
        ),
        // §3.16
        row(
            "page_temp_off",
            10,
            "temp_off",
            true,
            Operands,
            &["Success", "NotFound", "InvalidParameter", "AccessDenied"],
        ),
        // The handler named by its node (a callback's way, §7.4), then as §3.16.
        row(
            "page_temp_off_ex",
            29,
            "temp_off",
            true,
            Operands,
            &[
                "Success",
                "InvalidHandle",
                "NotFound",
                "InvalidParameter",
                "AccessDenied",
            ],
        ),
        // §3.17
        row(
            "page_alias_mmio2",
            11,
            "alias",
            true,
            Operands,
            &[
                "Success",
                "AlreadyAliased",
                "NotSupportedInNemMode",
                "OutOfRange",
                "NotMmio2",
                "NotFound",
                "InvalidParameter",
                "AccessDenied",
            ],
        ),
        // §3.18
        row(
            "page_alias_hc",
            12,
            "alias",
            true,
            Operands,
            &[
                "Success",
                "AlreadyAliased",
                "NotSupportedInNemMode",
                "NotFound",
                "InvalidParameter",
                "AccessDenied",
                "NotMmio2",
            ],
        ),
        // §3.19
        row(
            "reset_aliased_page",
            13,
            "reset_alias",
            true,
            Operands,
            &["Success", "InvalidParameter", "WrongType", "NotFound", "Internal"],
        ),
        // §3.20
        row("vm_reset", 14, "vm_reset", true, MmioHandlers, &["Success", "Internal"]),
        // §3.21 - §3.26
        row("is_registered", 23, "ex_api", false, Nothing, &["true", "false"]),
        row("is_all", 24, "ex_api", false, Nothing, &["true", "false", "NotFound"]),
        row("lookup", 25, "ex_api", false, Nothing, &["found", "none"]),
        row(
            "handler_info",
            26,
            "ex_api",
            false,
            Nothing,
            &["Success", "InvalidHandle"],
        ),
        row(
            "type_config",
            27,
            "ex_api",
            false,
            Nothing,
            &["Success", "InvalidHandle"],
        ),
        row("page", 28, "ex_api", false, Nothing, &["found", "none"]),
    ]
};

/// Largest bitmap a call allocates (64 K words = 4 Mi bits), so no call can exhaust memory.
pub const MAX_BITMAP_WORDS: u32 = 1 << 16;

impl<A> ApiCall<A> {
    /// A plain `register` of `[first, last]` (the type's description, no own one).
    pub fn register(first: A, last: A, ty: TypeIx, user: u64) -> Self {
        ApiCall::Register {
            first,
            last,
            ty,
            user,
            described: false,
        }
    }

    /// What the rest of the testbed needs to know about this call's operation.
    pub fn spec(&self) -> &'static CallSpec {
        &CALLS[self.index()]
    }

    /// The operation's name (statistics keys, coverage tables): the API method's name.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// Whether the call may change state (queries never do).
    pub fn mutates(&self) -> bool {
        self.spec().mutates
    }

    /// The operation's row in [`CALLS`] (its index in coverage tables).
    pub fn index(&self) -> usize {
        use ApiCall::*;
        match self {
            RegisterType { .. } => 0,
            Create { .. } => 1,
            Dup { .. } => 2,
            RegisterEx { .. } => 3,
            Register { .. } => 4,
            DeregisterEx { .. } => 5,
            Destroy { .. } => 6,
            Deregister { .. } => 7,
            ChangeUserArg { .. } => 8,
            Reset { .. } => 9,
            ResetMmio2WithBitmap { .. } => 10,
            PageTempOff { .. } => 11,
            PageTempOffEx { .. } => 12,
            PageAliasMmio2 { .. } => 13,
            PageAliasHc { .. } => 14,
            ResetAliasedPage { .. } => 15,
            VmReset => 16,
            IsRegistered { .. } => 17,
            IsAll { .. } => 18,
            Lookup { .. } => 19,
            HandlerInfo { .. } => 20,
            TypeConfig { .. } => 21,
            Page { .. } => 22,
        }
    }

    /// Shows `f` every operand of the call, in declaration order, by the role it plays
    /// ([`Operand`]); `f` may change them (the shrinker renumbers nodes and types this way).
    /// Everything that reads a call's operands generically — the trace hash's encoding, the
    /// pages a step touched, the text of a step, the shrinker — goes through here, so a new
    /// call's operands are declared once.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(Operand<'_, A>)) {
        use ApiCall::*;
        use Operand as O;
        match self {
            RegisterType {
                kind,
                not_in_hm,
                keep_lock,
            } => {
                f(O::Kind(kind));
                f(O::Flag("not-in-HM", not_in_hm));
                f(O::Flag("keep-lock", keep_lock));
            }
            Create { ty, user, described } => {
                f(O::Type(ty));
                f(O::User(user));
                f(O::Described(described));
            }
            Dup { h } | DeregisterEx { h } | Destroy { h } | HandlerInfo { h } => f(O::Node(h)),
            RegisterEx { h, first, last } => {
                f(O::Node(h));
                f(O::Range(first, last));
            }
            Register {
                first,
                last,
                ty,
                user,
                described,
            } => {
                f(O::Range(first, last));
                f(O::Type(ty));
                f(O::User(user));
                f(O::Described(described));
            }
            Deregister { addr } | Reset { addr } => f(O::Handler(addr)),
            ChangeUserArg { addr, user } => {
                f(O::Handler(addr));
                f(O::User(user));
            }
            ResetMmio2WithBitmap {
                addr,
                words,
                offset,
                fill,
            } => {
                f(O::Handler(addr));
                f(O::Words(words));
                f(O::BitOffset(offset));
                f(O::Fill(fill));
            }
            PageTempOff { addr, page } => {
                f(O::Handler(addr));
                f(O::Page(page));
            }
            PageTempOffEx { h, page } => {
                f(O::Node(h));
                f(O::Page(page));
            }
            PageAliasMmio2 {
                addr,
                page,
                region,
                offset,
            } => {
                f(O::Handler(addr));
                f(O::Page(page));
                f(O::Region(region));
                f(O::ByteOffset(offset));
            }
            PageAliasHc { addr, page, host } => {
                f(O::Handler(addr));
                f(O::Page(page));
                f(O::Host(host));
            }
            ResetAliasedPage { page, accounting } => {
                f(O::Page(page));
                f(O::Accounting(accounting));
            }
            VmReset => {}
            IsRegistered { addr } | IsAll { addr } | Lookup { addr } | Page { addr } => f(O::Addr(addr)),
            TypeConfig { ty } => f(O::Type(ty)),
        }
    }

    /// [`ApiCall::visit_mut`] for readers: `f` sees the operands of a copy, so what it
    /// writes is dropped.
    pub fn visit(&self, f: &mut dyn FnMut(Operand<'_, A>))
    where
        A: Copy,
    {
        let mut copy = *self;
        copy.visit_mut(f);
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

#[cfg(test)]
mod tests {
    use super::*;
    use arbitrary::{Arbitrary, Unstructured};

    /// Every row is some variant's: arbitrary calls reach every index (the match in
    /// `index` has one arm per variant and as many rows as variants, so onto is bijective).
    #[test]
    fn every_row_of_the_table_belongs_to_a_call() {
        let mut seen = [false; CALLS.len()];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if let Ok(call) = ApiCall::<u64>::arbitrary(&mut Unstructured::new(&bytes)) {
                seen[call.index()] = true;
            }
        }
        let missing: Vec<&str> = CALLS
            .iter()
            .zip(seen)
            .filter(|(_, s)| !s)
            .map(|(c, _)| c.name)
            .collect();
        assert!(missing.is_empty(), "no call maps to {missing:?}");
    }

    /// Names and trace-hash tags are unique, and tags stay clear of the simulator's own
    /// steps (15-21) and a concurrent run's headers (30, 31).
    #[test]
    fn names_and_tags_are_unique() {
        for (i, a) in CALLS.iter().enumerate() {
            assert!(
                !(15..=21).contains(&a.tag) && a.tag != 30 && a.tag != 31,
                "{}: tag {}",
                a.name,
                a.tag
            );
            for b in &CALLS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.tag, b.tag, "{} and {}", a.name, b.name);
            }
        }
    }
}
