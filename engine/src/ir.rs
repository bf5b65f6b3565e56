//! The common intermediate representation (IR) of a rule set.
//!
//! Both front-ends (SecLang in [`crate::seclang`], the Cloudflare-style language in
//! [`crate::cfrule`]) produce a [`RuleSet`]; every backend (native evaluator, Lua compiler)
//! and every tool reads one. It serialises to JSON with serde; the `version` field names the
//! format revision ([`IR_VERSION`]). The format is documented in `engine/docs/ir.md`.
//!
//! Design notes:
//! - Directives stay in file order, including load-time edits such as
//!   `SecRuleRemoveById`; resolving them is the job of whoever builds an executable rule set.
//!   This keeps the IR lossless, so IR -> SecLang -> IR is the identity.
//! - `Include` is expanded by the parser; each rule keeps the file and line it came from.
//! - Chains are nested: a rule's `chain` field holds the next link.
//! - A rule's actions are one ordered list (ModSecurity applies `setvar`s in order, `t:none`
//!   resets the transformations before it), with accessors for the common fields.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Revision of the JSON format. Bump it on any incompatible change.
pub const IR_VERSION: u32 = 1;

/// A whole rule set: configuration directives, rules and markers in load order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    pub version: u32,
    pub directives: Vec<Directive>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet { version: IR_VERSION, directives: Vec::new() }
    }
}

impl RuleSet {
    /// All rules (first links of chains), in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.directives.iter().filter_map(|d| match d {
            Directive::Rule(r) => Some(r),
            _ => None,
        })
    }

    /// Removes source locations, e.g. to compare two rule sets parsed from different files.
    pub fn strip_locations(&mut self) {
        for d in &mut self.directives {
            match d {
                Directive::Rule(r) => {
                    let mut link = Some(r);
                    while let Some(r) = link {
                        r.loc = None;
                        link = r.chain.as_deref_mut();
                    }
                }
                Directive::Marker(m) => m.loc = None,
                Directive::DefaultAction(d) => d.loc = None,
                _ => {}
            }
        }
    }
}

/// Where a rule or directive came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: String,
    pub line: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One configuration directive, in load order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Directive {
    /// `SecRule` (with an operator) or `SecAction` (without targets and operator).
    Rule(Rule),
    /// `SecMarker NAME`.
    Marker(Marker),
    /// `SecDefaultAction "phase:N,..."`: applies to the rules of that phase that follow it.
    DefaultAction(DefaultAction),
    /// Engine settings that influence evaluation.
    Config(ConfigDirective),
    /// Directives kept for completeness (audit log, debug log, directories, ...): they do not
    /// change decisions. `name` is one of [`PASSTHROUGH_DIRECTIVES`].
    Setting { name: String, args: Vec<String> },
    /// `SecRuleRemoveById 1 2 100-200`.
    RemoveById(Vec<IdRange>),
    /// `SecRuleRemoveByTag REGEX`.
    RemoveByTag(String),
    /// `SecRuleRemoveByMsg REGEX`.
    RemoveByMsg(String),
    /// `SecRuleUpdateTargetById ID|RANGE "TARGETS" ["REPLACED"]`.
    UpdateTargetById { ids: Vec<IdRange>, targets: Vec<Target>, replaced: Option<Vec<Target>> },
    /// `SecRuleUpdateTargetByTag TAG "TARGETS" ["REPLACED"]`.
    UpdateTargetByTag { tag: String, targets: Vec<Target>, replaced: Option<Vec<Target>> },
    /// `SecRuleUpdateTargetByMsg MSG "TARGETS" ["REPLACED"]`.
    UpdateTargetByMsg { msg: String, targets: Vec<Target>, replaced: Option<Vec<Target>> },
    /// `SecRuleUpdateActionById ID "ACTIONS"`.
    UpdateActionById { id: u64, actions: Vec<Action> },
}

/// Directives that are parsed and kept but do not influence decisions.
pub const PASSTHROUGH_DIRECTIVES: &[&str] = &[
    "SecAuditEngine",
    "SecAuditLog",
    "SecAuditLog2",
    "SecAuditLogDirMode",
    "SecAuditLogFileMode",
    "SecAuditLogFormat",
    "SecAuditLogParts",
    "SecAuditLogRelevantStatus",
    "SecAuditLogStorageDir",
    "SecAuditLogType",
    "SecDebugLog",
    "SecDebugLogLevel",
    "SecTmpDir",
    "SecDataDir",
    "SecUploadDir",
    "SecUploadKeepFiles",
    "SecUploadFileMode",
    "SecUploadFileLimit",
    "SecTmpSaveUploadedFiles",
    "SecServerSignature",
    "SecStatusEngine",
    "SecHttpBlKey",
    "SecGeoLookupDb",
    "SecGsbLookupDb",
    "SecConnEngine",
    "SecXmlExternalEntity",
    "SecWebAppId",
    "SecSensorId",
    "SecHashEngine",
    "SecHashKey",
    "SecHashParam",
    "SecHashMethodRx",
    "SecHashMethodPm",
    "SecContentInjection",
    "SecStreamOutBodyInspection",
    "SecStreamInBodyInspection",
    "SecRemoteRules",
    "SecRemoteRulesFailAction",
    "SecInterceptOnError",
];

/// Engine settings that change evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigDirective {
    RuleEngine(EngineMode),
    RequestBodyAccess(bool),
    ResponseBodyAccess(bool),
    RequestBodyLimit(u64),
    RequestBodyNoFilesLimit(u64),
    RequestBodyInMemoryLimit(u64),
    RequestBodyLimitAction(LimitAction),
    ResponseBodyLimit(u64),
    ResponseBodyLimitAction(LimitAction),
    RequestBodyJsonDepthLimit(u64),
    ArgumentsLimit(u64),
    ResponseBodyMimeType(Vec<String>),
    ResponseBodyMimeTypesClear,
    PcreMatchLimit(u64),
    PcreMatchLimitRecursion(u64),
    ArgumentSeparator(String),
    CookieFormat(u8),
    UnicodeMapFile { path: String, code_point: u32 },
    CollectionTimeout(u64),
    ComponentSignature(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EngineMode {
    On,
    Off,
    DetectionOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LimitAction {
    Reject,
    ProcessPartial,
}

/// An inclusive rule-id range, as in `SecRuleRemoveById 900000-900999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdRange {
    pub start: u64,
    pub end: u64,
}

impl IdRange {
    pub fn single(id: u64) -> Self {
        IdRange { start: id, end: id }
    }
    pub fn contains(&self, id: u64) -> bool {
        self.start <= id && id <= self.end
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultAction {
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<Loc>,
}

/// One rule, or one link of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Variables inspected. Empty for `SecAction` and for rules that use `condition`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// `None` for `SecAction` (unconditional) and for rules that use `condition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// A boolean expression over several clauses. Only the Cloudflare-style front-end
    /// produces it, for `or`/`not (...)` that SecLang cannot express with a chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    pub actions: Vec<Action>,
    /// The next link of a chain (present when `actions` holds `chain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Box<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc: Option<Loc>,
}

impl Rule {
    pub fn id(&self) -> Option<u64> {
        self.actions.iter().find_map(|a| match a {
            Action::Id(id) => Some(*id),
            _ => None,
        })
    }
    pub fn phase(&self) -> Option<u8> {
        self.actions.iter().find_map(|a| match a {
            Action::Phase(p) => Some(*p),
            _ => None,
        })
    }
    pub fn msg(&self) -> Option<&MacroString> {
        self.actions.iter().find_map(|a| match a {
            Action::Msg(m) => Some(m),
            _ => None,
        })
    }
    pub fn tags(&self) -> impl Iterator<Item = &MacroString> {
        self.actions.iter().filter_map(|a| match a {
            Action::Tag(t) => Some(t),
            _ => None,
        })
    }
    /// Transformations in order, `t:none` included (it resets those before it).
    pub fn transformations(&self) -> impl Iterator<Item = Transformation> + '_ {
        self.actions.iter().filter_map(|a| match a {
            Action::T(t) => Some(*t),
            _ => None,
        })
    }
    /// The chain links after this one.
    pub fn links(&self) -> impl Iterator<Item = &Rule> {
        std::iter::successors(Some(self), |r| r.chain.as_deref())
    }
    pub fn has_action(&self, f: impl Fn(&Action) -> bool) -> bool {
        self.actions.iter().any(f)
    }
}

/// A boolean condition (Cloudflare-style rules only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Targets, transformations and an operator: matches when the operator matches any target.
    Clause(Clause),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clause {
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transformations: Vec<Transformation>,
    pub operator: Operator,
}

/// One entry of a rule's variable list: `ARGS`, `ARGS:foo`, `!ARGS:/^x/`, `&TX:score`,
/// `XML:/*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub variable: Variable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    /// `!VAR:key`: excludes matching elements from the other targets of the rule.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude: bool,
    /// `&VAR`: the number of elements instead of their values.
    #[serde(default, skip_serializing_if = "is_false")]
    pub count: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Target {
    pub fn whole(variable: Variable) -> Self {
        Target { variable, selector: None, exclude: false, count: false }
    }
    pub fn key(variable: Variable, key: impl Into<String>) -> Self {
        Target { variable, selector: Some(Selector::Key(key.into())), exclude: false, count: false }
    }
}

/// Which elements of a collection a target picks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// A literal key (case-insensitive in ModSecurity for most collections); for `XML`, an
    /// XPath expression.
    Key(String),
    /// `/regex/`: every element whose key matches.
    Regex(String),
}

/// A string that may contain macros such as `%{tx.anomaly_score}`.
///
/// In JSON a literal-only string is a plain string; one with macros is a list of parts:
/// `["^", {"var": "TX", "key": "allowed_methods"}, "$"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "MacroRepr", into = "MacroRepr")]
pub struct MacroString {
    pub parts: Vec<MacroPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MacroPart {
    Lit(String),
    Var {
        var: Variable,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum MacroRepr {
    Plain(String),
    Parts(Vec<MacroPart>),
}

impl From<MacroRepr> for MacroString {
    fn from(r: MacroRepr) -> Self {
        match r {
            MacroRepr::Plain(s) => MacroString::literal(s),
            MacroRepr::Parts(parts) => MacroString { parts },
        }
    }
}

impl From<MacroString> for MacroRepr {
    fn from(m: MacroString) -> Self {
        match m.as_literal() {
            Some(s) => MacroRepr::Plain(s.to_string()),
            None => MacroRepr::Parts(m.parts),
        }
    }
}

impl MacroString {
    pub fn literal(s: impl Into<String>) -> Self {
        let s = s.into();
        if s.is_empty() {
            MacroString { parts: Vec::new() }
        } else {
            MacroString { parts: vec![MacroPart::Lit(s)] }
        }
    }
    /// The text when it holds no macro.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [MacroPart::Lit(s)] => Some(s),
            _ => None,
        }
    }
    pub fn has_macros(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, MacroPart::Var { .. }))
    }
}

impl fmt::Display for MacroString {
    /// The SecLang spelling: `%{TX.name}` for macros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                MacroPart::Lit(s) => f.write_str(s)?,
                MacroPart::Var { var, key: Some(k) } => write!(f, "%{{{}.{}}}", var.name(), k)?,
                MacroPart::Var { var, key: None } => write!(f, "%{{{}}}", var.name())?,
            }
        }
        Ok(())
    }
}

/// An operator with its argument, possibly negated (`!@rx`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    #[serde(default, skip_serializing_if = "is_false")]
    pub negated: bool,
    #[serde(flatten)]
    pub kind: OperatorKind,
}

/// Operators with typed arguments. JSON: `{"op": "rx", "arg": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "arg", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperatorKind {
    Rx(MacroString),
    /// `@pm`: phrases split on white space.
    Pm(Vec<String>),
    /// `@pmFromFile` / `@pmf`: the file resolved against the including rule file, and its
    /// phrases (one a line, `#` comments and blank lines dropped).
    PmFromFile(DataFile),
    /// `@ipMatch`: comma-separated addresses and networks.
    IpMatch(Vec<String>),
    /// `@ipMatchFromFile` / `@ipMatchF`.
    IpMatchFromFile(DataFile),
    Eq(MacroString),
    Ge(MacroString),
    Gt(MacroString),
    Le(MacroString),
    Lt(MacroString),
    StrEq(MacroString),
    StrMatch(MacroString),
    BeginsWith(MacroString),
    EndsWith(MacroString),
    Contains(MacroString),
    ContainsWord(MacroString),
    Within(MacroString),
    DetectSqli,
    DetectXss,
    /// `@validateByteRange 1-255,9`: allowed byte ranges, inclusive.
    ValidateByteRange(Vec<(u8, u8)>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    ValidateDtd(String),
    ValidateSchema(String),
    ValidateHash(String),
    VerifyCc(String),
    VerifyCpf(String),
    VerifySsn(String),
    /// `@rbl HOST`: resolved offline (see the evaluator's docs).
    Rbl(String),
    GeoLookup,
    GsbLookup(String),
    InspectFile(String),
    FuzzyHash(String),
    UnconditionalMatch,
    NoMatch,
    /// Not a ModSecurity operator: exact membership in a list of strings (the Cloudflare-style
    /// `in { a b }`). Printed in SecLang as an anchored, escaped `@rx` alternation.
    InList(Vec<String>),
}

/// A data file an operator reads, with its content loaded at parse time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// The path as resolved when the rules were loaded (absolute when the rule file's
    /// directory was known).
    pub path: String,
    pub entries: Vec<String>,
}

/// Rule actions, in the order they were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    // Meta-data
    Id(u64),
    Phase(u8),
    Msg(MacroString),
    #[serde(rename = "logdata")]
    LogData(MacroString),
    Tag(MacroString),
    Severity(Severity),
    Ver(String),
    Rev(String),
    Maturity(u8),
    Accuracy(u8),
    // Disruptive
    Deny,
    Block,
    Drop,
    Pass,
    Allow(AllowScope),
    Redirect(MacroString),
    Proxy(MacroString),
    Pause(u64),
    Status(u16),
    // Flow
    Chain,
    #[serde(rename = "skip_after")]
    SkipAfter(String),
    Skip(u32),
    // Data
    #[serde(rename = "setvar")]
    SetVar(SetVar),
    #[serde(rename = "setenv")]
    SetEnv {
        name: MacroString,
        value: MacroString,
    },
    #[serde(rename = "setuid")]
    SetUid(MacroString),
    #[serde(rename = "setsid")]
    SetSid(MacroString),
    #[serde(rename = "setrsc")]
    SetRsc(MacroString),
    #[serde(rename = "initcol")]
    InitCol {
        collection: String,
        key: MacroString,
    },
    #[serde(rename = "expirevar")]
    ExpireVar {
        collection: String,
        key: MacroString,
        seconds: MacroString,
    },
    #[serde(rename = "deprecatevar")]
    DeprecateVar {
        collection: String,
        key: MacroString,
        value: MacroString,
    },
    Ctl(Ctl),
    /// `t:NAME`.
    T(Transformation),
    Capture,
    #[serde(rename = "multi_match")]
    MultiMatch,
    Log,
    #[serde(rename = "nolog")]
    NoLog,
    #[serde(rename = "auditlog")]
    AuditLog,
    #[serde(rename = "noauditlog")]
    NoAuditLog,
    #[serde(rename = "sanitise_arg")]
    SanitiseArg(String),
    #[serde(rename = "sanitise_matched")]
    SanitiseMatched,
    #[serde(rename = "sanitise_matched_bytes")]
    SanitiseMatchedBytes(Option<String>),
    #[serde(rename = "sanitise_request_header")]
    SanitiseRequestHeader(String),
    #[serde(rename = "sanitise_response_header")]
    SanitiseResponseHeader(String),
    Exec(String),
    Append(MacroString),
    Prepend(MacroString),
    Xmlns {
        prefix: String,
        uri: String,
    },
}

impl Action {
    /// Disruptive actions decide what happens when the rule matches.
    pub fn is_disruptive(&self) -> bool {
        matches!(
            self,
            Action::Deny
                | Action::Block
                | Action::Drop
                | Action::Pass
                | Action::Allow(_)
                | Action::Redirect(_)
                | Action::Proxy(_)
                | Action::Pause(_)
        )
    }

    /// v3's configuration-only actions (`ConfigurationKind`), read when a rule is built and
    /// never run: the SecLang name of one, `None` for the others. `SecDefaultAction` refuses
    /// them (but `phase`), and `SecRuleUpdateActionById` drops them.
    pub fn configuration_name(&self) -> Option<&'static str> {
        Some(match self {
            Action::Id(_) => "id",
            Action::Phase(_) => "phase",
            Action::Rev(_) => "rev",
            Action::Ver(_) => "ver",
            Action::Maturity(_) => "maturity",
            Action::Accuracy(_) => "accuracy",
            Action::Chain => "chain",
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowScope {
    /// `allow`: skip every remaining phase of the transaction.
    All,
    /// `allow:phase`: skip the rest of the current phase.
    Phase,
    /// `allow:request`: skip the remaining request phases.
    Request,
}

/// `severity:CRITICAL` or `severity:2`; printed as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    pub const ALL: [Severity; 8] = [
        Severity::Emergency,
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Info,
        Severity::Debug,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Severity::Emergency => "EMERGENCY",
            Severity::Alert => "ALERT",
            Severity::Critical => "CRITICAL",
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Info => "INFO",
            Severity::Debug => "DEBUG",
        }
    }
    /// Accepts a name (any case) or a number 0-7.
    pub fn parse(s: &str) -> Option<Severity> {
        if let Ok(n) = s.parse::<usize>() {
            return Severity::ALL.get(n).copied();
        }
        Severity::ALL.into_iter().find(|v| v.name().eq_ignore_ascii_case(s))
    }
}

/// `setvar:COLLECTION.KEY=VALUE` and its variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SetVar {
    /// Lower-case collection name: `tx`, `ip`, `global`, `session`, `user`, `resource`.
    pub collection: String,
    pub key: MacroString,
    pub op: SetVarOp,
    #[serde(default)]
    pub value: MacroString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetVarOp {
    /// `setvar:tx.x=v`
    Set,
    /// `setvar:tx.x=+v`
    Add,
    /// `setvar:tx.x=-v`
    Sub,
    /// `setvar:!tx.x`
    Delete,
    /// `setvar:tx.x` (no `=`)
    Create,
}

/// `ctl:NAME=VALUE`: per-transaction configuration changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ctl {
    RuleEngine(EngineMode),
    RequestBodyAccess(bool),
    ResponseBodyAccess(bool),
    /// `URLENCODED`, `MULTIPART`, `XML` or `JSON`.
    RequestBodyProcessor(String),
    ForceRequestBodyVariable(bool),
    RequestBodyLimit(u64),
    RuleRemoveById(Vec<IdRange>),
    RuleRemoveByTag(String),
    RuleRemoveByMsg(String),
    RuleRemoveTargetById {
        ids: Vec<IdRange>,
        target: Target,
    },
    RuleRemoveTargetByTag {
        tag: String,
        target: Target,
    },
    RuleRemoveTargetByMsg {
        msg: String,
        target: Target,
    },
    AuditEngine(String),
    AuditLogParts(String),
    DebugLogLevel(u32),
    HashEngine(String),
    HashEnforcement(String),
}

/// Transformations (`t:NAME`). Names parse case-insensitively; the British spellings
/// (`normalisePath`) are aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Transformation {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "base64Decode")]
    Base64Decode,
    #[serde(rename = "base64DecodeExt")]
    Base64DecodeExt,
    #[serde(rename = "base64Encode")]
    Base64Encode,
    #[serde(rename = "cmdLine")]
    CmdLine,
    #[serde(rename = "compressWhitespace")]
    CompressWhitespace,
    #[serde(rename = "cssDecode")]
    CssDecode,
    #[serde(rename = "escapeSeqDecode")]
    EscapeSeqDecode,
    #[serde(rename = "hexDecode")]
    HexDecode,
    #[serde(rename = "hexEncode")]
    HexEncode,
    #[serde(rename = "htmlEntityDecode")]
    HtmlEntityDecode,
    #[serde(rename = "jsDecode")]
    JsDecode,
    #[serde(rename = "length")]
    Length,
    #[serde(rename = "lowercase")]
    Lowercase,
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "normalizePath")]
    NormalizePath,
    #[serde(rename = "normalizePathWin")]
    NormalizePathWin,
    #[serde(rename = "parityEven7bit")]
    ParityEven7bit,
    #[serde(rename = "parityOdd7bit")]
    ParityOdd7bit,
    #[serde(rename = "parityZero7bit")]
    ParityZero7bit,
    #[serde(rename = "removeComments")]
    RemoveComments,
    #[serde(rename = "removeCommentsChar")]
    RemoveCommentsChar,
    #[serde(rename = "removeNulls")]
    RemoveNulls,
    #[serde(rename = "removeWhitespace")]
    RemoveWhitespace,
    #[serde(rename = "replaceComments")]
    ReplaceComments,
    #[serde(rename = "replaceNulls")]
    ReplaceNulls,
    #[serde(rename = "sha1")]
    Sha1,
    #[serde(rename = "sqlHexDecode")]
    SqlHexDecode,
    #[serde(rename = "trim")]
    Trim,
    #[serde(rename = "trimLeft")]
    TrimLeft,
    #[serde(rename = "trimRight")]
    TrimRight,
    #[serde(rename = "uppercase")]
    Uppercase,
    #[serde(rename = "urlDecode")]
    UrlDecode,
    #[serde(rename = "urlDecodeUni")]
    UrlDecodeUni,
    #[serde(rename = "urlEncode")]
    UrlEncode,
    #[serde(rename = "utf8toUnicode")]
    Utf8ToUnicode,
}

impl Transformation {
    pub const ALL: &'static [Transformation] = &[
        Transformation::None,
        Transformation::Base64Decode,
        Transformation::Base64DecodeExt,
        Transformation::Base64Encode,
        Transformation::CmdLine,
        Transformation::CompressWhitespace,
        Transformation::CssDecode,
        Transformation::EscapeSeqDecode,
        Transformation::HexDecode,
        Transformation::HexEncode,
        Transformation::HtmlEntityDecode,
        Transformation::JsDecode,
        Transformation::Length,
        Transformation::Lowercase,
        Transformation::Md5,
        Transformation::NormalizePath,
        Transformation::NormalizePathWin,
        Transformation::ParityEven7bit,
        Transformation::ParityOdd7bit,
        Transformation::ParityZero7bit,
        Transformation::RemoveComments,
        Transformation::RemoveCommentsChar,
        Transformation::RemoveNulls,
        Transformation::RemoveWhitespace,
        Transformation::ReplaceComments,
        Transformation::ReplaceNulls,
        Transformation::Sha1,
        Transformation::SqlHexDecode,
        Transformation::Trim,
        Transformation::TrimLeft,
        Transformation::TrimRight,
        Transformation::Uppercase,
        Transformation::UrlDecode,
        Transformation::UrlDecodeUni,
        Transformation::UrlEncode,
        Transformation::Utf8ToUnicode,
    ];

    /// The canonical SecLang name.
    pub fn name(self) -> &'static str {
        match self {
            Transformation::None => "none",
            Transformation::Base64Decode => "base64Decode",
            Transformation::Base64DecodeExt => "base64DecodeExt",
            Transformation::Base64Encode => "base64Encode",
            Transformation::CmdLine => "cmdLine",
            Transformation::CompressWhitespace => "compressWhitespace",
            Transformation::CssDecode => "cssDecode",
            Transformation::EscapeSeqDecode => "escapeSeqDecode",
            Transformation::HexDecode => "hexDecode",
            Transformation::HexEncode => "hexEncode",
            Transformation::HtmlEntityDecode => "htmlEntityDecode",
            Transformation::JsDecode => "jsDecode",
            Transformation::Length => "length",
            Transformation::Lowercase => "lowercase",
            Transformation::Md5 => "md5",
            Transformation::NormalizePath => "normalizePath",
            Transformation::NormalizePathWin => "normalizePathWin",
            Transformation::ParityEven7bit => "parityEven7bit",
            Transformation::ParityOdd7bit => "parityOdd7bit",
            Transformation::ParityZero7bit => "parityZero7bit",
            Transformation::RemoveComments => "removeComments",
            Transformation::RemoveCommentsChar => "removeCommentsChar",
            Transformation::RemoveNulls => "removeNulls",
            Transformation::RemoveWhitespace => "removeWhitespace",
            Transformation::ReplaceComments => "replaceComments",
            Transformation::ReplaceNulls => "replaceNulls",
            Transformation::Sha1 => "sha1",
            Transformation::SqlHexDecode => "sqlHexDecode",
            Transformation::Trim => "trim",
            Transformation::TrimLeft => "trimLeft",
            Transformation::TrimRight => "trimRight",
            Transformation::Uppercase => "uppercase",
            Transformation::UrlDecode => "urlDecode",
            Transformation::UrlDecodeUni => "urlDecodeUni",
            Transformation::UrlEncode => "urlEncode",
            Transformation::Utf8ToUnicode => "utf8toUnicode",
        }
    }

    /// Case-insensitive lookup, British spellings included.
    pub fn from_name(name: &str) -> Option<Transformation> {
        let canonical = if name.eq_ignore_ascii_case("normalisePath") {
            "normalizePath"
        } else if name.eq_ignore_ascii_case("normalisePathWin") {
            "normalizePathWin"
        } else {
            name
        };
        Transformation::ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(canonical))
    }
}

macro_rules! variables {
    ($($v:ident => $n:literal,)*) => {
        /// ModSecurity variables and collections.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Variable {
            $(#[serde(rename = $n)] $v,)*
        }

        impl Variable {
            pub const ALL: &'static [Variable] = &[$(Variable::$v,)*];

            /// The SecLang name, upper case.
            pub fn name(self) -> &'static str {
                match self { $(Variable::$v => $n,)* }
            }

            /// Case-insensitive lookup.
            pub fn from_name(name: &str) -> Option<Variable> {
                $(if name.eq_ignore_ascii_case($n) { return Some(Variable::$v); })*
                None
            }
        }
    };
}

variables! {
    Args => "ARGS",
    ArgsCombinedSize => "ARGS_COMBINED_SIZE",
    ArgsGet => "ARGS_GET",
    ArgsGetNames => "ARGS_GET_NAMES",
    ArgsNames => "ARGS_NAMES",
    ArgsPost => "ARGS_POST",
    ArgsPostNames => "ARGS_POST_NAMES",
    AuthType => "AUTH_TYPE",
    Duration => "DURATION",
    Env => "ENV",
    Files => "FILES",
    FilesCombinedSize => "FILES_COMBINED_SIZE",
    FilesNames => "FILES_NAMES",
    FilesSizes => "FILES_SIZES",
    FilesTmpNames => "FILES_TMPNAMES",
    FilesTmpContent => "FILES_TMP_CONTENT",
    FullRequest => "FULL_REQUEST",
    FullRequestLength => "FULL_REQUEST_LENGTH",
    Geo => "GEO",
    Global => "GLOBAL",
    HighestSeverity => "HIGHEST_SEVERITY",
    InboundDataError => "INBOUND_DATA_ERROR",
    Ip => "IP",
    MatchedVar => "MATCHED_VAR",
    MatchedVarName => "MATCHED_VAR_NAME",
    MatchedVars => "MATCHED_VARS",
    MatchedVarsNames => "MATCHED_VARS_NAMES",
    ModsecBuild => "MODSEC_BUILD",
    MscPcreLimitsExceeded => "MSC_PCRE_LIMITS_EXCEEDED",
    MultipartBoundaryQuoted => "MULTIPART_BOUNDARY_QUOTED",
    MultipartBoundaryWhitespace => "MULTIPART_BOUNDARY_WHITESPACE",
    MultipartCrlfLfLines => "MULTIPART_CRLF_LF_LINES",
    MultipartDataAfter => "MULTIPART_DATA_AFTER",
    MultipartDataBefore => "MULTIPART_DATA_BEFORE",
    MultipartFileLimitExceeded => "MULTIPART_FILE_LIMIT_EXCEEDED",
    MultipartFilename => "MULTIPART_FILENAME",
    MultipartHeaderFolding => "MULTIPART_HEADER_FOLDING",
    MultipartInvalidHeaderFolding => "MULTIPART_INVALID_HEADER_FOLDING",
    MultipartInvalidPart => "MULTIPART_INVALID_PART",
    MultipartInvalidQuoting => "MULTIPART_INVALID_QUOTING",
    MultipartLfLine => "MULTIPART_LF_LINE",
    MultipartMissingSemicolon => "MULTIPART_MISSING_SEMICOLON",
    MultipartName => "MULTIPART_NAME",
    MultipartPartHeaders => "MULTIPART_PART_HEADERS",
    MultipartStrictError => "MULTIPART_STRICT_ERROR",
    MultipartUnmatchedBoundary => "MULTIPART_UNMATCHED_BOUNDARY",
    OutboundDataError => "OUTBOUND_DATA_ERROR",
    PathInfo => "PATH_INFO",
    QueryString => "QUERY_STRING",
    RemoteAddr => "REMOTE_ADDR",
    RemoteHost => "REMOTE_HOST",
    RemotePort => "REMOTE_PORT",
    RemoteUser => "REMOTE_USER",
    ReqbodyError => "REQBODY_ERROR",
    ReqbodyErrorMsg => "REQBODY_ERROR_MSG",
    ReqbodyProcessor => "REQBODY_PROCESSOR",
    ReqbodyProcessorError => "REQBODY_PROCESSOR_ERROR",
    ReqbodyProcessorErrorMsg => "REQBODY_PROCESSOR_ERROR_MSG",
    RequestBasename => "REQUEST_BASENAME",
    RequestBody => "REQUEST_BODY",
    RequestBodyLength => "REQUEST_BODY_LENGTH",
    RequestCookies => "REQUEST_COOKIES",
    RequestCookiesNames => "REQUEST_COOKIES_NAMES",
    RequestFilename => "REQUEST_FILENAME",
    RequestHeaders => "REQUEST_HEADERS",
    RequestHeadersNames => "REQUEST_HEADERS_NAMES",
    RequestLine => "REQUEST_LINE",
    RequestMethod => "REQUEST_METHOD",
    RequestProtocol => "REQUEST_PROTOCOL",
    RequestUri => "REQUEST_URI",
    RequestUriRaw => "REQUEST_URI_RAW",
    Resource => "RESOURCE",
    ResponseBody => "RESPONSE_BODY",
    ResponseContentLength => "RESPONSE_CONTENT_LENGTH",
    ResponseContentType => "RESPONSE_CONTENT_TYPE",
    ResponseHeaders => "RESPONSE_HEADERS",
    ResponseHeadersNames => "RESPONSE_HEADERS_NAMES",
    ResponseProtocol => "RESPONSE_PROTOCOL",
    ResponseStatus => "RESPONSE_STATUS",
    Rule => "RULE",
    ServerAddr => "SERVER_ADDR",
    ServerName => "SERVER_NAME",
    ServerPort => "SERVER_PORT",
    Session => "SESSION",
    SessionId => "SESSIONID",
    StatusLine => "STATUS_LINE",
    Time => "TIME",
    TimeDay => "TIME_DAY",
    TimeEpoch => "TIME_EPOCH",
    TimeHour => "TIME_HOUR",
    TimeMin => "TIME_MIN",
    TimeMon => "TIME_MON",
    TimeSec => "TIME_SEC",
    TimeWday => "TIME_WDAY",
    TimeYear => "TIME_YEAR",
    Tx => "TX",
    UniqueId => "UNIQUE_ID",
    UrlencodedError => "URLENCODED_ERROR",
    User => "USER",
    UserId => "USERID",
    WebAppId => "WEBAPPID",
    WebserverErrorLog => "WEBSERVER_ERROR_LOG",
    Xml => "XML",
}

impl Variable {
    /// Collections hold keyed elements (`ARGS:foo`); the others are scalars.
    pub fn is_collection(self) -> bool {
        use Variable::*;
        matches!(
            self,
            Args | ArgsGet
                | ArgsPost
                | ArgsNames
                | ArgsGetNames
                | ArgsPostNames
                | Env
                | Files
                | FilesNames
                | FilesSizes
                | FilesTmpNames
                | FilesTmpContent
                | Geo
                | Global
                | Ip
                | MatchedVars
                | MatchedVarsNames
                | MultipartPartHeaders
                | RequestCookies
                | RequestCookiesNames
                | RequestHeaders
                | RequestHeadersNames
                | Resource
                | ResponseHeaders
                | ResponseHeadersNames
                | Rule
                | Session
                | Tx
                | User
                | Xml
        )
    }

    /// The earliest phase in which the variable has its final value for a request.
    pub fn available_phase(self) -> u8 {
        use Variable::*;
        match self {
            Args
            | ArgsNames
            | ArgsPost
            | ArgsPostNames
            | ArgsCombinedSize
            | Files
            | FilesCombinedSize
            | FilesNames
            | FilesSizes
            | FilesTmpNames
            | FilesTmpContent
            | RequestBody
            | RequestBodyLength
            | ReqbodyError
            | ReqbodyErrorMsg
            | ReqbodyProcessorError
            | ReqbodyProcessorErrorMsg
            | Xml
            | MultipartBoundaryQuoted
            | MultipartBoundaryWhitespace
            | MultipartCrlfLfLines
            | MultipartDataAfter
            | MultipartDataBefore
            | MultipartFileLimitExceeded
            | MultipartFilename
            | MultipartHeaderFolding
            | MultipartInvalidHeaderFolding
            | MultipartInvalidPart
            | MultipartInvalidQuoting
            | MultipartLfLine
            | MultipartMissingSemicolon
            | MultipartName
            | MultipartPartHeaders
            | MultipartStrictError
            | MultipartUnmatchedBoundary
            | FullRequest
            | FullRequestLength => 2,
            ResponseHeaders
            | ResponseHeadersNames
            | ResponseStatus
            | ResponseProtocol
            | StatusLine
            | ResponseContentType
            | ResponseContentLength => 3,
            ResponseBody | OutboundDataError => 4,
            _ => 1,
        }
    }
}

impl fmt::Display for Target {
    /// The SecLang spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclude {
            f.write_str("!")?;
        }
        if self.count {
            f.write_str("&")?;
        }
        f.write_str(self.variable.name())?;
        match &self.selector {
            None => Ok(()),
            Some(Selector::Key(k)) => {
                if k.bytes().any(|b| matches!(b, b'|' | b',' | b' ' | b'"' | b'\'' | b'\t')) {
                    write!(f, ":'{}'", k.replace('\\', "\\\\").replace('\'', "\\'"))
                } else {
                    write!(f, ":{k}")
                }
            }
            Some(Selector::Regex(r)) => write!(f, ":/{r}/"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformation_names_round_trip_and_aliases() {
        for t in Transformation::ALL {
            assert_eq!(Transformation::from_name(t.name()), Some(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert_eq!(Transformation::from_name("normalisePath"), Some(Transformation::NormalizePath));
        assert_eq!(Transformation::from_name("base64decode"), Some(Transformation::Base64Decode));
        assert_eq!(Transformation::from_name("nope"), None);
    }

    #[test]
    fn variable_names_round_trip() {
        for v in Variable::ALL {
            assert_eq!(Variable::from_name(v.name()), Some(*v));
            assert_eq!(Variable::from_name(&v.name().to_ascii_lowercase()), Some(*v));
        }
        assert_eq!(Variable::from_name("NOT_A_VAR"), None);
    }

    #[test]
    fn macro_string_json_forms() {
        let lit = MacroString::literal("abc");
        assert_eq!(serde_json::to_string(&lit).unwrap(), "\"abc\"");
        let m = MacroString {
            parts: vec![
                MacroPart::Lit("^".into()),
                MacroPart::Var { var: Variable::Tx, key: Some("allowed_methods".into()) },
                MacroPart::Lit("$".into()),
            ],
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"["^",{"var":"TX","key":"allowed_methods"},"$"]"#);
        let back: MacroString = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.to_string(), "^%{TX.allowed_methods}$");
    }

    #[test]
    fn rule_json_round_trip() {
        let rule = Rule {
            targets: vec![Target::key(Variable::RequestHeaders, "User-Agent")],
            operator: Some(Operator {
                negated: false,
                kind: OperatorKind::BeginsWith(MacroString::literal("DataStore/")),
            }),
            condition: None,
            actions: vec![
                Action::Id(100000),
                Action::Phase(1),
                Action::T(Transformation::None),
                Action::SetVar(SetVar {
                    collection: "tx".into(),
                    key: MacroString::literal("score"),
                    op: SetVarOp::Add,
                    value: MacroString::literal("5"),
                }),
                Action::Deny,
                Action::Status(403),
            ],
            chain: None,
            loc: None,
        };
        let set = RuleSet { version: IR_VERSION, directives: vec![Directive::Rule(rule)] };
        let json = serde_json::to_string(&set).unwrap();
        let back: RuleSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert!(json.contains(r#""op":"begins_with""#), "{json}");
    }
}
