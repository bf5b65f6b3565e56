//! The primitives the generated Lua calls, shared by both calling conventions.
//!
//! Per phase, Rust builds a [`Ctx`] on its stack (the native `Transaction` plus the handle
//! plan and the state of the rule being run), records its address as the thread's active
//! context and hands it to the phase function as a light userdata. Every primitive takes
//! that pointer and integer handles, checks the pointer against the active one (a Lua
//! value cannot forge access to memory) and calls the same `Transaction` steps the native
//! evaluator uses, so the two engines cannot drift apart in semantics.
//!
//! Two bindings call [`dispatch`]: `mlua` functions ([`register_mlua`]) and `extern "C"`
//! exports called through LuaJIT's FFI ([`super::ffi`]). Both return integers, so one
//! generated chunk serves both.

use super::codegen::{LinkPlan, Plan, TRef};
use crate::eval::compile::{CRule, CTarget, FastSkip, PLAN_NONE, SkipPlan};
use crate::eval::run::{Excl, RuleMsg, Transaction};
use mlua::{LightUserData, Lua};
use std::cell::Cell;
use std::ffi::c_void;

/// Primitive numbers, shared by the mlua and FFI bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Pre,
    Scan,
    LinkBegin,
    Target,
    Target0,
    LinkEnd,
    Link,
    After,
    Done,
    Uncond,
    Clause,
    CondDone,
    Marker,
    Init,
}

impl Prim {
    pub(crate) fn from_name(n: &str) -> Option<Prim> {
        Some(match n {
            "pre" => Prim::Pre,
            "scan" => Prim::Scan,
            "lbegin" => Prim::LinkBegin,
            "tgt" => Prim::Target,
            "tgt0" => Prim::Target0,
            "lend" => Prim::LinkEnd,
            "link" => Prim::Link,
            "after" => Prim::After,
            "done" => Prim::Done,
            "uncond" => Prim::Uncond,
            "clause" => Prim::Clause,
            "cdone" => Prim::CondDone,
            "marker" => Prim::Marker,
            "init" => Prim::Init,
            _ => return None,
        })
    }
}

/// What a rule's end primitive tells the generated code.
pub(crate) const FLOW_NEXT: i32 = 0;
pub(crate) const FLOW_STOP: i32 = 1;
pub(crate) const FLOW_JUMP: i32 = 2;

/// The per-phase context behind the light userdata.
pub(crate) struct Ctx<'c, 'p> {
    pub(crate) t: &'c mut Transaction<'p>,
    pub(crate) plan: &'p Plan,
    msg: RuleMsg,
    expanded: Option<Vec<u8>>,
    exclusions: Vec<&'p CTarget>,
    /// Set when the generated code passed a handle that does not exist.
    pub(crate) fault: Option<String>,
}

impl<'c, 'p> Ctx<'c, 'p> {
    pub(crate) fn new(t: &'c mut Transaction<'p>, plan: &'p Plan) -> Ctx<'c, 'p> {
        Ctx {
            t,
            plan,
            msg: RuleMsg::new(None),
            expanded: None,
            exclusions: Vec::new(),
            fault: None,
        }
    }

    fn bad(&mut self, what: &str, h: i32) -> i32 {
        if self.fault.is_none() {
            self.fault = Some(format!("bad {what} handle {h}"));
        }
        0
    }

    /// Runs one primitive. `a` and `b` are its integer arguments (unused ones are 0).
    pub(crate) fn call(&mut self, p: Prim, a: i32, b: i32) -> i32 {
        let plan = self.plan;
        let ua = usize::try_from(a).unwrap_or(usize::MAX);
        let ub = usize::try_from(b).unwrap_or(usize::MAX);
        match p {
            Prim::Pre => self.pre(ua, a),
            // Rules `a..=b` (a run of rules without folded plans, `Pass::SkipRuns`): `pre` of
            // each in turn up to the first that runs, whose handle is returned; `b + 1` when
            // none.
            Prim::Scan => {
                if ua > ub || ub >= plan.rules.len() {
                    return self.bad("rule", b);
                }
                for r in ua..=ub {
                    if self.pre(r, r as i32) != 0 {
                        return r as i32;
                    }
                }
                b.saturating_add(1)
            }
            Prim::LinkBegin => {
                let Some((_, link, lp)) = plan.link(ua) else { return self.bad("link", a) };
                self.expanded = self.t.link_expansion(link);
                self.exclusions.clear();
                for &r in &lp.exclusions {
                    if let Some(t) = plan.target(link, r) {
                        self.exclusions.push(t);
                    }
                }
                0
            }
            Prim::Target | Prim::Target0 => {
                let Some((root, link, lp)) = plan.link(ua) else { return self.bad("link", a) };
                let Some(t) = lp.targets.get(ub).and_then(|&r| plan.target(link, r)) else {
                    return self.bad("target", b);
                };
                i32::from(self.read_target(root, link, t, p == Prim::Target, lp, ub))
            }
            Prim::LinkEnd => {
                let Some((_, link, _)) = plan.link(ua) else { return self.bad("link", a) };
                i32::from(self.t.link_end(link, b != 0))
            }
            // The calls `gen_link` emits when the link is not fused: `lbegin` when the plan
            // says so, `tgt` (or `tgt0`) for every target in order, even after a hit, `lend`.
            Prim::Link => {
                let Some((root, link, lp)) = plan.link(ua) else { return self.bad("link", a) };
                if lp.begin {
                    self.call(Prim::LinkBegin, a, 0);
                }
                let mut hit = false;
                for (k, &r) in lp.targets.iter().enumerate() {
                    let Some(t) = plan.target(link, r) else {
                        return self.bad("target", k as i32);
                    };
                    hit |= self.read_target(root, link, t, lp.begin, lp, k);
                }
                i32::from(self.t.link_end(link, hit))
            }
            Prim::After => {
                let Some((_, link, _)) = plan.link(ua) else { return self.bad("link", a) };
                self.t.after_full_match(&link.actions, &mut self.msg);
                0
            }
            Prim::Done => {
                let Some(rp) = plan.rules.get(ua) else { return self.bad("rule", a) };
                self.t.finish_operator_rule(&rp.rule, b != 0, &self.msg);
                self.flow(ua)
            }
            Prim::Uncond => {
                let Some(rp) = plan.rules.get(ua) else { return self.bad("rule", a) };
                self.t.eval_unconditional(&rp.rule, &mut self.msg);
                self.flow(ua)
            }
            Prim::Clause => {
                let Some((_, cl)) = plan.clause(ua) else { return self.bad("clause", a) };
                i32::from(self.t.eval_clause(cl))
            }
            Prim::CondDone => {
                let Some(rp) = plan.rules.get(ua) else { return self.bad("rule", a) };
                self.t.finish_condition_rule(&rp.rule, b != 0, &mut self.msg);
                self.flow(ua)
            }
            Prim::Marker => {
                let Some(name) = plan.markers.get(ua) else { return self.bad("marker", a) };
                self.t.at_marker(name);
                0
            }
            // 1: the request-independent run's outcome was applied; skip its items.
            Prim::Init => i32::from(self.t.try_init_snapshot()),
        }
    }

    /// One target of a link (`tgt`): with the exclusions and operator argument `lbegin`
    /// set up when `begun`, with neither otherwise (`tgt0`).
    /// `k`: the target's position in `lp`, whose `named_whole` saves comparing its name with
    /// every exclusion's.
    fn read_target(
        &mut self,
        root: &CRule,
        link: &CRule,
        t: &CTarget,
        begun: bool,
        lp: &LinkPlan,
        k: usize,
    ) -> bool {
        let (ex, arg) = if begun {
            let ex = match lp.named_whole {
                Some(m) if m & (1 << k) != 0 => return false,
                Some(_) => Excl::RefsChecked(&self.exclusions),
                None => Excl::Refs(&self.exclusions),
            };
            (ex, self.expanded.as_deref())
        } else {
            (Excl::Refs(&[]), None)
        };
        // A link's own target: its source from the link's hot copy, not the target.
        let source = match lp.targets.get(k) {
            Some(&TRef::Own(i)) => link.hot.source(i, t),
            _ => t.source,
        };
        self.t.link_target_from(root, link, t, source, ex, arg, &mut self.msg)
    }

    /// `pre` of rule `ri` (handle `a` as the generated code passed it).
    fn pre(&mut self, ri: usize, a: i32) -> i32 {
        let Some(rp) = self.plan.rules.get(ri) else { return self.bad("rule", a) };
        if let Some(FastSkip { plan: SkipPlan::AfterInitMatch { fold, past } }) = rp.fast {
            // Folded as matched, with a jump the code takes to the label right after the
            // fold's marker (codegen kept `past` only then): nothing is left pending.
            if past != PLAN_NONE && self.t.turn_idle() && self.t.take_fold(u32::from(fold)) {
                return FLOW_JUMP;
            }
        }
        if !self.t.rule_should_run(&rp.rule, rp.fast.as_ref()) {
            // A rule folded as matched may have left its `skipAfter` pending: when the code
            // jumps there itself (`gen_rule`), it is told to (FLOW_JUMP).
            let folded = rp.fast.is_some_and(|f| f.plan.is_folded_match());
            return if folded && self.flow(ri) == FLOW_JUMP { FLOW_JUMP } else { 0 };
        }
        self.t.settle_folds();
        // `hot.id()`: on the rule's first cache line, which `rule_should_run` read.
        self.t.set_current_rule(rp.rule.hot.id());
        self.msg = RuleMsg::new(rp.rule.hot.id());
        1
    }

    /// After a rule: stop the phase when it interrupted (v3 breaks out of the phase loop),
    /// jump when its `skipAfter` target is the label the code generator placed.
    fn flow(&mut self, ri: usize) -> i32 {
        if self.t.interrupted() {
            return FLOW_STOP;
        }
        let local = self.plan.local_jumps.get(ri).and_then(Option::as_deref);
        if let (Some(want), Some(pending)) = (local, self.t.pending_marker()) {
            if want == pending {
                self.t.clear_marker();
                return FLOW_JUMP;
            }
        }
        FLOW_NEXT
    }
}

thread_local! {
    /// The context the running phase function may use; 0 outside a phase call.
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
}

/// Makes `ctx` the active context while `f` runs (restoring the previous one after, so a
/// nested engine on the same thread cannot be confused with this one).
pub(crate) fn with_active<R>(ctx: &mut Ctx<'_, '_>, f: impl FnOnce(*mut c_void) -> R) -> R {
    let p = ctx as *mut Ctx<'_, '_> as *mut c_void;
    let prev = ACTIVE.with(|a| a.replace(p as usize));
    let r = f(p);
    ACTIVE.with(|a| a.set(prev));
    r
}

/// Runs a primitive for a pointer received from Lua; `None` when it is not the active
/// context (a stale or forged pointer).
pub(crate) fn dispatch(ctx: *mut c_void, p: Prim, a: i32, b: i32) -> Option<i32> {
    if ctx.is_null() || ACTIVE.with(|c| c.get()) != ctx as usize {
        return None;
    }
    // SAFETY: `ctx` is the address `with_active` published for the `Ctx` it holds a unique
    // borrow of for the duration of the Lua call; primitives never call back into Lua, so no
    // other reference to it is live while this one is used.
    let c = unsafe { &mut *(ctx as *mut Ctx<'_, '_>) };
    Some(c.call(p, a, b))
}

/// Builds the `waf` table of mlua functions.
pub(crate) fn register_mlua(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    for name in super::codegen::PRIMITIVES {
        let Some(p) = Prim::from_name(name) else { continue };
        let f = lua.create_function(
            move |_, (ctx, a, b): (LightUserData, Option<i32>, Option<i32>)| {
                dispatch(ctx.0, p, a.unwrap_or(0), b.unwrap_or(0)).ok_or_else(|| {
                    mlua::Error::RuntimeError("wafbench: call outside its phase".into())
                })
            },
        )?;
        t.set(*name, f)?;
    }
    Ok(t)
}
