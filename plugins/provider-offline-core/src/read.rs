//! Reading a question: one pass over its tokens that recognises, longest phrase first, date
//! ranges, comparisons, "top N", aggregates and superlatives, grouping words, sample values and
//! the schema's tables and columns. The result is a list of [`Item`]s in question order, plus the
//! tokens nothing explained (the translator refuses a question with any of those left).

use crate::dialect::Unit;
use crate::schema::{ColumnKind, Sample, Schema};
use crate::words::{FILLER, Token, identifier_stems, stem};

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// `SUM`.
    Sum,
    /// `AVG`.
    Avg,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

impl AggFn {
    /// The SQL function name.
    pub fn sql(self) -> &'static str {
        match self {
            AggFn::Sum => "SUM",
            AggFn::Avg => "AVG",
            AggFn::Min => "MIN",
            AggFn::Max => "MAX",
        }
    }

    /// A word for aliases and descriptions.
    pub fn word(self) -> &'static str {
        match self {
            AggFn::Sum => "total",
            AggFn::Avg => "average",
            AggFn::Min => "min",
            AggFn::Max => "max",
        }
    }
}

/// What a superlative implies when it names no column ("most expensive", "latest").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concept {
    /// Nothing implied: the measure is the next thing named.
    Plain,
    /// A price ("expensive", "cheap").
    Price,
    /// Money ("revenue", "sales", "spent").
    Money,
    /// How often ("most common", "most frequently").
    Frequency,
    /// A date ("latest", "oldest").
    Date,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `=`.
    Eq,
    /// `BETWEEN a AND b`.
    Between,
}

impl CmpOp {
    /// The SQL operator (not for `Between`).
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq | CmpOp::Between => "=",
        }
    }
}

/// A date range on some date column.
#[derive(Debug, Clone, PartialEq)]
pub enum DateRange {
    /// The last `n` units up to today.
    Last(u32, Unit),
    /// The current period (this month, this year, today).
    This(Unit),
    /// The previous whole period (last month, last year, yesterday).
    Previous(Unit),
    /// A calendar year.
    Year(i32),
    /// A month of a year (1–12).
    Month(i32, u32),
}

/// A part of a date to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    /// Calendar day.
    Day,
    /// Week.
    Week,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-Qn`.
    Quarter,
    /// Year.
    Year,
}

/// One thing recognised in the question.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A table, by index.
    Table(usize),
    /// A column: table index, column index.
    Column(usize, usize),
    /// A sample value of a text column: equality with the literal as the schema spells it.
    Value(usize, usize, String),
    /// A value written right after a text column's name ("status delivered"): case-insensitive.
    LooseValue(usize, usize, String),
    /// A boolean column named as an adjective ("active customers"); false when negated.
    Flag(usize, usize, bool),
    /// "how many", "number of", "count".
    Count,
    /// "distinct", "different", "unique".
    Distinct,
    /// An aggregate word.
    Agg(AggFn),
    /// "costs", "priced" before a comparison: the comparison is on the price.
    PriceWord,
    /// A superlative: true for most/highest, false for least/lowest; what it implies.
    Superlative(bool, Concept),
    /// "top N" / "N most".
    Top(u64),
    /// "per", "by", "for each", "in each".
    GroupBy,
    /// "month", "year" … (used after [`Item::GroupBy`]).
    Part(DatePart),
    /// A comparison with a number (and a second one for `Between`).
    Compare(CmpOp, f64, Option<f64>),
    /// A date range.
    Date(DateRange),
    /// "revenue", "sales", "spent".
    Money,
    /// "which", "who".
    Which,
    /// "list", "show", "what are".
    List,
    /// "no" / "without" before a column ("have no manager").
    Without,
    /// A word ending several tables' columns; resolved to the one whose table the question
    /// otherwise names (left as is, it is refused).
    Ambiguous(Vec<(usize, usize)>),
}

/// The recognised items with the token index each starts at, and the tokens left unexplained.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Items in question order.
    pub items: Vec<(usize, Item)>,
    /// Tokens that are neither recognised nor filler.
    pub unknown: Vec<String>,
    /// Positions of words that look like verbs ("enrolled", "shipping"): not the head of a compound noun.
    pub verbs: Vec<usize>,
}

/// Words that make a question one the translator must not attempt.
const OUT_OF_SCOPE: &[&str] = &[
    "percent",
    "percentage",
    "percentages",
    "ratio",
    "rate",
    "rates",
    "median",
    "percentile",
    "rank",
    "ranking",
    "ranked",
    "running",
    "cumulative",
    "growth",
    "grow",
    "compare",
    "compared",
    "comparison",
    "trend",
    "trends",
    "versus",
    "vs",
    "both",
    "same",
    "consecutive",
    "previous",
    "prior",
    "difference",
    "differ",
    "twice",
    "once",
    "pair",
    "pairs",
    "together",
    "except",
    "never",
    "not",
    "neither",
    "nor",
    "or",
    "consistently",
    "correlation",
    "proportion",
    "share",
    "again",
    "subsequent",
    "improved",
    "increase",
    "increased",
    "decrease",
    "decreased",
    "only",
    "if",
    "whose",
    "within",
    "after",
    "before",
    "since",
    "until",
    "second",
    "third",
    "nth",
    "mode",
    "variance",
    "stddev",
    "deviation",
    "weighted",
    "score",
    "pattern",
    "seasonal",
    "significantly",
    "lifetime",
    "conversion",
    "own",
    "other",
    "another",
    "also",
    "excluding",
    "including",
    "both",
    "every",
];

/// Words that start a superlative and what they mean: (word, most?, concept).
const SUPERLATIVES: &[(&str, bool, Concept)] = &[
    ("most", true, Concept::Plain),
    ("highest", true, Concept::Plain),
    ("largest", true, Concept::Plain),
    ("biggest", true, Concept::Plain),
    ("greatest", true, Concept::Plain),
    ("best", true, Concept::Plain),
    ("least", false, Concept::Plain),
    ("lowest", false, Concept::Plain),
    ("smallest", false, Concept::Plain),
    ("fewest", false, Concept::Plain),
    ("worst", false, Concept::Plain),
    ("priciest", true, Concept::Price),
    ("costliest", true, Concept::Price),
    ("cheapest", false, Concept::Price),
    ("newest", true, Concept::Date),
    ("latest", true, Concept::Date),
    ("oldest", false, Concept::Date),
    ("earliest", false, Concept::Date),
];

const MONEY_WORDS: &[&str] = &[
    "revenue", "revenues", "sales", "spent", "spend", "spending", "spends", "earned", "income", "turnover", "earnings",
];

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Read `tokens` against `schema`.
pub fn read(schema: &Schema, tokens: &[Token]) -> Reading {
    let mut r = Reader {
        schema,
        t: tokens,
        used: vec![false; tokens.len()],
        keep: vec![false; tokens.len()],
        items: Vec::new(),
    };
    r.run();
    let mut unknown = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        if !r.used[i] && !FILLER.contains(&tok.text.as_str()) {
            unknown.push(tok.raw.clone());
        }
    }
    r.items.sort_by_key(|(i, _)| *i);
    let verbs = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.text.ends_with("ed") || t.text.ends_with("ing"))
        .map(|(i, _)| i)
        .collect();
    Reading { items: r.items, unknown, verbs }
}

struct Reader<'a> {
    schema: &'a Schema,
    t: &'a [Token],
    used: Vec<bool>,
    /// Tokens of date ranges and comparisons: "last", "more", "than" are fine there.
    keep: Vec<bool>,
    items: Vec<(usize, Item)>,
}

impl Reader<'_> {
    fn text(&self, i: usize) -> &str {
        self.t.get(i).map(|t| t.text.as_str()).unwrap_or("")
    }

    fn is(&self, i: usize, words: &[&str]) -> bool {
        self.t.get(i).is_some_and(|t| !self.used[i] && words.contains(&t.text.as_str()))
    }

    fn num(&self, i: usize) -> Option<f64> {
        self.t.get(i).filter(|_| !self.used[i]).and_then(|t| t.number)
    }

    fn year(&self, i: usize) -> Option<i32> {
        self.num(i).filter(|n| n.fract() == 0.0 && (1900.0..=2100.0).contains(n)).map(|n| n as i32)
    }

    fn take(&mut self, start: usize, len: usize, item: Item) {
        let keep = matches!(item, Item::Date(_) | Item::Compare(..));
        for k in start..(start + len).min(self.used.len()) {
            self.used[k] = true;
            self.keep[k] |= keep;
        }
        self.items.push((start, item));
    }

    fn mark(&mut self, start: usize, len: usize) {
        for k in start..(start + len).min(self.used.len()) {
            self.used[k] = true;
        }
    }

    fn run(&mut self) {
        self.dates();
        self.comparisons();
        // Multi-word names first, so "total amount" is a column before "total" is a sum.
        self.schema_names(2);
        self.keywords();
        self.schema_names(1);
        self.values();
        self.loose_values();
        // A year standing alone ("orders 2024") is a year.
        for i in 0..self.t.len() {
            if let Some(y) = self.year(i) {
                self.take(i, 1, Item::Date(DateRange::Year(y)));
            }
        }
        self.resolve_ambiguous();
        // Out-of-scope words are left unexplained on purpose: the question is refused.
        for i in 0..self.t.len() {
            if OUT_OF_SCOPE.contains(&self.text(i)) && !self.keep[i] {
                self.used[i] = false;
            }
        }
    }

    /// "amount" when both `orders.total_amount` and `payments.amount` exist: the column of the
    /// one table the rest of the question names.
    fn resolve_ambiguous(&mut self) {
        let named: Vec<usize> = self
            .items
            .iter()
            .filter_map(|(_, it)| match it {
                Item::Table(t)
                | Item::Column(t, _)
                | Item::Value(t, ..)
                | Item::LooseValue(t, ..)
                | Item::Flag(t, ..) => Some(*t),
                _ => None,
            })
            .collect();
        for (_, item) in self.items.iter_mut() {
            if let Item::Ambiguous(cands) = item {
                let hits: Vec<(usize, usize)> = cands.iter().copied().filter(|(t, _)| named.contains(t)).collect();
                let mut tables: Vec<usize> = hits.iter().map(|(t, _)| *t).collect();
                tables.dedup();
                if let [(t, c)] = hits[..] {
                    *item = Item::Column(t, c);
                }
            }
        }
    }

    /// Date ranges: "last 30 days", "past week", "this month", "last year", "in 2024",
    /// "in March 2024", "today", "yesterday", "since 2023", "before 2022".
    fn dates(&mut self) {
        let unit = |w: &str| match w.trim_end_matches('s') {
            "day" => Some(Unit::Day),
            "week" => Some(Unit::Week),
            "month" => Some(Unit::Month),
            "quarter" => Some(Unit::Quarter),
            "year" => Some(Unit::Year),
            _ => None,
        };
        let mut i = 0;
        while i < self.t.len() {
            let w = self.text(i).to_string();
            // "in the last 30 days", "over the past 2 weeks", "during the last year"
            let lead = usize::from(self.is(i, &["in", "over", "during", "within", "for"]));
            let lead = lead + usize::from(self.is(i + lead, &["the"]));
            let j = i + lead;
            if self.is(j, &["last", "past", "previous", "recent"]) {
                if let (Some(n), Some(u)) = (self.num(j + 1), unit(self.text(j + 2)))
                    && n >= 1.0
                    && n.fract() == 0.0
                {
                    self.take(i, lead + 3, Item::Date(DateRange::Last(n as u32, u)));
                    i = j + 3;
                    continue;
                }
                if let Some(u) = unit(self.text(j + 1)).filter(|_| !self.text(j + 1).ends_with('s')) {
                    let range = if self.text(j) == "past" { DateRange::Last(1, u) } else { DateRange::Previous(u) };
                    self.take(i, lead + 2, Item::Date(range));
                    i = j + 2;
                    continue;
                }
            }
            if self.is(j, &["this", "current"])
                && let Some(u) = unit(self.text(j + 1))
            {
                self.take(i, lead + 2, Item::Date(DateRange::This(u)));
                i = j + 2;
                continue;
            }
            if w == "today" && !self.used[i] {
                self.take(i, 1, Item::Date(DateRange::This(Unit::Day)));
            } else if w == "yesterday" && !self.used[i] {
                self.take(i, 1, Item::Date(DateRange::Previous(Unit::Day)));
            } else if let Some(m) = MONTHS.iter().position(|m| *m == w).filter(|_| !self.used[i]) {
                if let Some(y) = self.year(i + 1) {
                    let start = if self.is(i.wrapping_sub(1), &["in", "during", "of", "for"]) { i - 1 } else { i };
                    self.take(start, i + 2 - start, Item::Date(DateRange::Month(y, m as u32 + 1)));
                }
            } else if self.is(i, &["in", "during", "for", "of", "from"])
                && let Some(y) = self.year(i + 1)
            {
                self.take(i, 2, Item::Date(DateRange::Year(y)));
                i += 2;
                continue;
            }
            i += 1;
        }
    }

    /// "over 100", "more than 5", "at least 3", "under 50", "between 10 and 20", "> 100".
    /// A price verb right before ("costs less than 20", "priced over 100") compares the price.
    fn comparisons(&mut self) {
        self.comparisons_only();
        let compares: Vec<usize> =
            self.items.iter().filter(|(_, it)| matches!(it, Item::Compare(..))).map(|(k, _)| *k).collect();
        for k in compares {
            if k > 0 && self.is(k - 1, &["cost", "costs", "priced", "worth"]) {
                self.take(k - 1, 1, Item::PriceWord);
            }
        }
    }

    fn comparisons_only(&mut self) {
        const PHRASES: &[(&[&str], CmpOp)] = &[
            (&["more", "than"], CmpOp::Gt),
            (&["greater", "than"], CmpOp::Gt),
            (&["higher", "than"], CmpOp::Gt),
            (&["larger", "than"], CmpOp::Gt),
            (&["bigger", "than"], CmpOp::Gt),
            (&["older", "than"], CmpOp::Gt),
            (&["costlier", "than"], CmpOp::Gt),
            (&["exceeding"], CmpOp::Gt),
            (&["exceeds"], CmpOp::Gt),
            (&["exceed"], CmpOp::Gt),
            (&["over"], CmpOp::Gt),
            (&["above"], CmpOp::Gt),
            (&["at", "least"], CmpOp::Ge),
            (&["no", "less", "than"], CmpOp::Ge),
            (&["minimum", "of"], CmpOp::Ge),
            (&["or", "more"], CmpOp::Ge),
            (&["less", "than"], CmpOp::Lt),
            (&["fewer", "than"], CmpOp::Lt),
            (&["lower", "than"], CmpOp::Lt),
            (&["smaller", "than"], CmpOp::Lt),
            (&["cheaper", "than"], CmpOp::Lt),
            (&["younger", "than"], CmpOp::Lt),
            (&["under"], CmpOp::Lt),
            (&["below"], CmpOp::Lt),
            (&["at", "most"], CmpOp::Le),
            (&["no", "more", "than"], CmpOp::Le),
            (&["maximum", "of"], CmpOp::Le),
            (&["up", "to"], CmpOp::Le),
            (&["equal", "to"], CmpOp::Eq),
            (&["exactly"], CmpOp::Eq),
        ];
        for i in 0..self.t.len() {
            if self.used[i] {
                continue;
            }
            if self.is(i, &["between"])
                && let (Some(a), true, Some(b)) = (self.num(i + 1), self.is(i + 2, &["and"]), self.num(i + 3))
            {
                self.take(i, 4, Item::Compare(CmpOp::Between, a.min(b), Some(a.max(b))));
                continue;
            }
            for (words, op) in PHRASES {
                let n = words.len();
                if (0..n).all(|k| self.is(i + k, &[words[k]])) {
                    // "5 or more": the number comes first.
                    if words[0] == "or" {
                        continue;
                    }
                    if let Some(x) = self.num(i + n) {
                        self.take(i, n + 1, Item::Compare(*op, x, None));
                        break;
                    }
                }
            }
            if !self.used[i]
                && let (Some(x), true, true) = (self.num(i), self.is(i + 1, &["or"]), self.is(i + 2, &["more"]))
            {
                self.take(i, 3, Item::Compare(CmpOp::Ge, x, None));
            }
        }
    }

    /// Counting, aggregates, superlatives, "top N", grouping words, question words.
    fn keywords(&mut self) {
        let mut i = 0;
        while i < self.t.len() {
            if self.used[i] {
                i += 1;
                continue;
            }
            let w = self.text(i).to_string();
            let next = self.text(i + 1).to_string();
            let mut len = 1;
            let item = match w.as_str() {
                "how" if next == "many" => {
                    len = 2;
                    Some(Item::Count)
                }
                "how" if next == "much" => {
                    len = 2;
                    Some(Item::Agg(AggFn::Sum))
                }
                "number" if next == "of" => {
                    len = 2;
                    Some(Item::Count)
                }
                "count" | "counts" => Some(Item::Count),
                // "the distribution of statuses": a count per status.
                "distribution" | "breakdown" if next == "of" || next == "by" => {
                    self.items.push((i, Item::Count));
                    len = 2;
                    Some(Item::GroupBy)
                }
                "distinct" | "different" | "unique" => Some(Item::Distinct),
                "total" | "sum" | "overall" | "combined" => Some(Item::Agg(AggFn::Sum)),
                "average" | "avg" | "mean" => Some(Item::Agg(AggFn::Avg)),
                "minimum" | "min" => Some(Item::Agg(AggFn::Min)),
                "maximum" | "max" => Some(Item::Agg(AggFn::Max)),
                "top" | "first" | "bottom" if self.num(i + 1).is_some() => {
                    let n = self.num(i + 1).unwrap_or(1.0);
                    len = 2;
                    if w == "bottom" {
                        self.items.push((i, Item::Superlative(false, Concept::Plain)));
                    }
                    Some(Item::Top(n.max(1.0) as u64))
                }
                "top" => Some(Item::Superlative(true, Concept::Plain)),
                "per" | "by" => Some(Item::GroupBy),
                "each" | "every" if !self.is(i.wrapping_sub(1), &["for", "in"]) => Some(Item::GroupBy),
                "for" | "in" if next == "each" || next == "every" => {
                    len = 2;
                    Some(Item::GroupBy)
                }
                "which" | "who" => Some(Item::Which),
                "list" | "show" | "display" | "give" | "find" | "get" | "fetch" | "return" | "print" => {
                    Some(Item::List)
                }
                "what" if matches!(next.as_str(), "are" | "were") => {
                    len = 2;
                    Some(Item::List)
                }
                "no" | "without" | "missing" => Some(Item::Without),
                _ if MONEY_WORDS.contains(&w.as_str()) && !self.names_column(i) => Some(Item::Money),
                "expensive" | "costly" | "pricey" => {
                    // "most expensive" / "least expensive": the superlative word sets the direction.
                    let most =
                        !self.items.iter().any(|(k, it)| *k + 1 == i && matches!(it, Item::Superlative(false, _)));
                    self.items.retain(|(k, it)| !(*k + 1 == i && matches!(it, Item::Superlative(..))));
                    Some(Item::Superlative(most, Concept::Price))
                }
                "cheap" => Some(Item::Superlative(false, Concept::Price)),
                "best-selling" | "bestselling" | "top-selling" | "bestsellers" | "best-sellers" => {
                    Some(Item::Superlative(true, Concept::Plain))
                }
                "recent" | "newest" | "latest" if self.is(i.wrapping_sub(1), &["most"]) || w != "recent" => {
                    self.items.retain(|(k, it)| !(*k + 1 == i && matches!(it, Item::Superlative(..))));
                    Some(Item::Superlative(true, Concept::Date))
                }
                "common" | "frequent" | "frequently" | "often" | "popular" | "used" if self.after_superlative(i) => {
                    let most = self.superlative_before(i).unwrap_or(true);
                    self.items.retain(|(k, it)| !(*k + 1 >= i && *k < i && matches!(it, Item::Superlative(..))));
                    Some(Item::Superlative(most, Concept::Frequency))
                }
                "month" | "monthly" | "months" if self.group_word(i) => Some(Item::Part(DatePart::Month)),
                "year" | "yearly" | "annually" | "years" if self.group_word(i) => Some(Item::Part(DatePart::Year)),
                "day" | "daily" | "days" if self.group_word(i) => Some(Item::Part(DatePart::Day)),
                "week" | "weekly" | "weeks" if self.group_word(i) => Some(Item::Part(DatePart::Week)),
                "quarter" | "quarterly" | "quarters" if self.group_word(i) => Some(Item::Part(DatePart::Quarter)),
                _ => SUPERLATIVES.iter().find(|(s, ..)| *s == w).map(|(_, most, c)| Item::Superlative(*most, *c)),
            };
            match item {
                Some(item) => {
                    self.take(i, len, item);
                    i += len;
                }
                None => i += 1,
            }
        }
        // "top N" after the superlative ("the 5 most expensive"): N before a superlative.
        for i in 0..self.t.len() {
            if self.used[i] {
                continue;
            }
            if let Some(n) = self.num(i).filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n < 1000.0) {
                let next_sup = self.items.iter().any(|(k, it)| *k == i + 1 && matches!(it, Item::Superlative(..)));
                if next_sup {
                    self.take(i, 1, Item::Top(n as u64));
                }
            }
        }
    }

    /// Whether some column is named by token `i` alone (then it is that column, not a keyword).
    fn names_column(&self, i: usize) -> bool {
        let s = self.t[i].stem.as_str();
        self.schema
            .tables
            .iter()
            .flat_map(|t| &t.columns)
            .any(|c| identifier_stems(&c.name).last().is_some_and(|l| l == s))
    }

    /// Whether token `i` follows "most"/"least" (directly or after "frequently"-like words).
    fn after_superlative(&self, i: usize) -> bool {
        self.superlative_before(i).is_some() || self.is(i.wrapping_sub(1), &["most", "least"])
    }

    fn superlative_before(&self, i: usize) -> Option<bool> {
        self.items.iter().find(|(k, _)| *k + 1 == i).and_then(|(_, it)| match it {
            Item::Superlative(m, Concept::Plain) => Some(*m),
            _ => None,
        })
    }

    /// A date-part word counts as grouping when it follows a grouping word or is an adverb.
    fn group_word(&self, i: usize) -> bool {
        let w = self.text(i);
        w.ends_with("ly")
            || self.items.iter().any(|(k, it)| matches!(it, Item::GroupBy) && (*k + 1 == i || *k + 2 == i))
    }

    /// Tables and columns: "order items", "unit price", "orders", "customer country" (a table
    /// word qualifying one of its columns), "hired" (a date column's first word), boolean
    /// columns named as adjectives.
    fn schema_names(&mut self, min_len: usize) {
        let mut i = 0;
        while i < self.t.len() {
            if self.used[i] {
                i += 1;
                continue;
            }
            if let Some((len, item)) = self.schema_at(i).filter(|(len, _)| *len >= min_len) {
                self.take(i, len, item);
                i += len;
            } else {
                i += 1;
            }
        }
    }

    /// The best schema match starting at token `i`: (tokens used, item).
    fn schema_at(&self, i: usize) -> Option<(usize, Item)> {
        let stems: Vec<&str> =
            (i..self.t.len()).take_while(|k| !self.used[*k]).take(4).map(|k| self.t[k].stem.as_str()).collect();
        if stems.is_empty() {
            return None;
        }
        // Full names, longest first: columns before tables at equal length (a column name
        // that spells a table's name plus more is the more specific).
        for len in (1..=stems.len()).rev() {
            let window = &stems[..len];
            // table word + full column name of that table ("customer country", "order total").
            for (ti, t) in self.schema.tables.iter().enumerate() {
                let tstems = identifier_stems(&t.name);
                let head = tstems.last().map(String::as_str);
                for tl in [tstems.len(), 1] {
                    if tl > len - 1 || tl == 0 {
                        continue;
                    }
                    let tmatch = if tl == tstems.len() { window[..tl] == tstems[..] } else { Some(window[0]) == head };
                    if !tmatch {
                        continue;
                    }
                    if let Some(ci) = self.column_named(ti, &window[tl..]) {
                        return Some((len, Item::Column(ti, ci)));
                    }
                    // "order total" for `orders.total_amount`: one word that starts or ends
                    // exactly one plain column of that table.
                    if let [w] = window[tl..] {
                        let hits: Vec<usize> = (0..t.columns.len())
                            .filter(|c| {
                                let col = &t.columns[*c];
                                let cs = identifier_stems(&col.name);
                                !col.primary_key
                                    && col.references.is_none()
                                    && !col.kind.is_temporal()
                                    && !self.t[i + tl].text.ends_with("ed")
                                    && !self.t[i + tl].text.ends_with("ing")
                                    && !is_key_word(w)
                                    && (cs.first().map(String::as_str) == Some(w)
                                        || cs.last().map(String::as_str) == Some(w))
                            })
                            .collect();
                        if let [ci] = hits[..] {
                            return Some((len, self.column_item(ti, ci, i)));
                        }
                    }
                }
            }
            for ti in 0..self.schema.tables.len() {
                if let Some(ci) = self.column_named(ti, window) {
                    // A column named exactly like another table ("customer" in `orders`) is that table.
                    let is_table_too = self.schema.tables.iter().any(|o| identifier_stems(&o.name) == window);
                    if !is_table_too {
                        return Some((len, self.column_item(ti, ci, i)));
                    }
                }
            }
            for (ti, t) in self.schema.tables.iter().enumerate() {
                if identifier_stems(&t.name) == window {
                    return Some((len, Item::Table(ti)));
                }
            }
        }
        let s = stems[0];
        // "signed up", "logged in", "checked out": a verb and its particle name one thing.
        let phrasal = match (self.text(i), self.text(i + 1)) {
            (v, p @ ("up" | "in" | "out"))
                if v.ends_with("ed") && self.t.get(i + 1).is_some_and(|_| !self.used[i + 1]) =>
            {
                Some(stem(&format!("{}{p}", &v[..v.len() - 2])))
            }
            _ => None,
        };
        // A table by its last word ("items" for `order_items`), when only one table ends so.
        let heads: Vec<usize> = (0..self.schema.tables.len())
            .filter(|ti| identifier_stems(&self.schema.tables[*ti].name).last().map(String::as_str) == Some(s))
            .collect();
        if heads.len() == 1 {
            return Some((1, Item::Table(heads[0])));
        }
        // A column by its last word ("price" for `unit_price`), when only one column ends so.
        let mut cols = Vec::new();
        let mut firsts = Vec::new();
        for (ti, t) in self.schema.tables.iter().enumerate() {
            for (ci, c) in t.columns.iter().enumerate() {
                let cs = identifier_stems(&c.name);
                if cs.len() > 1 && cs.last().map(String::as_str) == Some(s) && !is_key_word(s) {
                    cols.push((ti, ci));
                }
                // "hired" → `hire_date`; "signed up" → `signup_date`.
                if cs.len() > 1
                    && c.kind.is_temporal()
                    && (cs[0] == s || Some(&cs[0]) == phrasal.as_ref())
                    && is_date_word(&cs[cs.len() - 1])
                {
                    firsts.push((ti, ci));
                }
                // "premium" → `is_premium`, "active" → `active`.
                if c.kind == ColumnKind::Boolean && cs.last().map(String::as_str) == Some(s) {
                    firsts.push((ti, ci));
                }
            }
        }
        if let [(ti, ci)] = firsts[..] {
            let cs = identifier_stems(&self.schema.tables[ti].columns[ci].name);
            let len = if phrasal.as_ref() == Some(&cs[0]) && cs[0] != s { 2 } else { 1 };
            return Some((len, self.column_item(ti, ci, i)));
        }
        if !cols.is_empty() && cols.iter().all(|(ti, _)| *ti == cols[0].0) && cols.len() == 1 {
            return Some((1, self.column_item(cols[0].0, cols[0].1, i)));
        }
        // Several tables have such a column: keep them all as candidates, the first in
        // mention order wins later (the analysis re-resolves by table).
        if cols.len() > 1 {
            return Some((1, Item::Ambiguous(cols)));
        }
        None
    }

    /// A boolean column named as an adjective is a filter; anything else a column mention.
    fn column_item(&self, ti: usize, ci: usize, at: usize) -> Item {
        let c = &self.schema.tables[ti].columns[ci];
        if c.kind == ColumnKind::Boolean {
            let negated = at > 0 && matches!(self.text(at - 1), "not" | "non" | "in");
            return Item::Flag(ti, ci, !negated);
        }
        Item::Column(ti, ci)
    }

    /// The column of table `ti` whose full name has exactly these stems.
    fn column_named(&self, ti: usize, window: &[&str]) -> Option<usize> {
        if window.is_empty() {
            return None;
        }
        let t = &self.schema.tables[ti];
        let same = |cs: &[String]| cs.len() == window.len() && cs.iter().zip(window).all(|(a, b)| a == b);
        t.columns.iter().position(|c| same(&identifier_stems(&c.name))).or_else(|| {
            // "parent category" for `parent_category_id`.
            t.columns.iter().position(|c| {
                let cs = identifier_stems(&c.name);
                c.references.is_some()
                    && cs.len() > 2
                    && cs.last().is_some_and(|l| is_key_word(l))
                    && same(&cs[..cs.len() - 1])
            })
        })
    }

    /// Sample values of text columns found in the question (longest phrase first).
    fn values(&mut self) {
        for len in (1..=4).rev() {
            let mut i = 0;
            while i + len <= self.t.len() {
                if (i..i + len).any(|k| self.used[k]) {
                    i += 1;
                    continue;
                }
                let phrase: Vec<&str> = self.t[i..i + len].iter().map(|t| t.text.as_str()).collect();
                let phrase = phrase.join(" ");
                if let Some((ti, ci, v)) = self.sample_match(&phrase) {
                    self.take(i, len, Item::Value(ti, ci, v));
                    i += len;
                } else {
                    i += 1;
                }
            }
        }
    }

    /// The text column whose samples hold `phrase` (case-insensitive, separators ignored).
    fn sample_match(&self, phrase: &str) -> Option<(usize, usize, String)> {
        if phrase.len() < 2 || FILLER.contains(&phrase) {
            return None;
        }
        let want = normalise(phrase);
        for (ti, t) in self.schema.tables.iter().enumerate() {
            for (ci, c) in t.columns.iter().enumerate() {
                if c.kind != ColumnKind::Text && c.kind != ColumnKind::Other {
                    continue;
                }
                for s in &c.samples {
                    if let Sample::Text(v) = s {
                        let norm = normalise(v);
                        // Single words also match by stem ("cats" for 'cat').
                        let stemmed = !want.contains(' ') && !norm.contains(' ') && stem(&norm) == stem(&want);
                        if norm == want || stemmed {
                            return Some((ti, ci, v.clone()));
                        }
                    }
                }
            }
        }
        None
    }

    /// "status delivered", "with status 'delivered'", "city of Berlin": a text column's name
    /// followed by a word that is nothing else.
    fn loose_values(&mut self) {
        let columns: Vec<(usize, usize, usize)> = self
            .items
            .iter()
            .filter_map(|(k, it)| match it {
                Item::Column(ti, ci) if self.schema.tables[*ti].columns[*ci].kind == ColumnKind::Text => {
                    Some((*k, *ti, *ci))
                }
                _ => None,
            })
            .collect();
        for (k, ti, ci) in columns {
            // The column mention may span several tokens; find its end.
            let mut j = k;
            while j < self.t.len() && self.used[j] {
                j += 1;
            }
            if j == k {
                continue;
            }
            let mut v = j;
            let connector = self.is(v, &["is", "of", "equals", "named", "called", "="]);
            if connector {
                v += 1;
            }
            let Some(tok) = self.t.get(v) else { continue };
            if self.used[v]
                || FILLER.contains(&tok.text.as_str())
                || tok.number.is_some()
                || NOT_VALUES.contains(&tok.text.as_str())
            {
                continue;
            }
            // Only where the question plainly says so: "with status delivered", "status is
            // delivered", "city 'Oslo'".
            let introduced = k > 0 && matches!(self.text(k - 1), "with" | "where" | "whose" | "having");
            if !(connector || introduced || tok.quoted) {
                continue;
            }
            let value = tok.text.clone();
            self.items.retain(|(p, it)| !(*p == k && matches!(it, Item::Column(..))));
            self.mark(j, v + 1 - j);
            self.items.push((k, Item::LooseValue(ti, ci, value)));
        }
    }
}

/// Words that follow "is" without being a value ("the method is used most often").
const NOT_VALUES: &[&str] = &[
    "used", "made", "placed", "done", "given", "taken", "sold", "paid", "not", "more", "less", "most", "least",
    "higher", "lower", "greater",
];

/// Lower-case, with `_`, `-` and repeated spaces folded to one space.
fn normalise(s: &str) -> String {
    s.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stems too generic to name a column by themselves.
fn is_key_word(s: &str) -> bool {
    ["id", "key", "code", "no", "num", "type"].iter().any(|w| stem(w) == s)
}

/// Last words of date columns (`hire_date`, `created_at`, `shipped_on`).
fn is_date_word(s: &str) -> bool {
    ["date", "at", "on", "time", "timestamp", "day"].iter().any(|w| stem(w) == s)
}

/// The stem of a word, re-exported for the analysis.
pub fn word_stem(w: &str) -> String {
    stem(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse;
    use crate::words::tokenize;

    const SHOP: &str = "CREATE TABLE customers (\n  id integer PRIMARY KEY,\n  name text,\n  country text, -- e.g. 'Germany', 'France'\n  is_vip boolean,\n);\n\
        CREATE TABLE orders (\n  id integer PRIMARY KEY,\n  customer_id integer REFERENCES customers(id),\n  status text, -- e.g. 'paid', 'shipped'\n  total_amount numeric,\n  created_at timestamp,\n);\n";

    fn items(q: &str) -> Reading {
        read(&parse(SHOP), &tokenize(q))
    }

    #[test]
    fn recognises_counts_tables_values_and_dates() {
        let r = items("How many orders from customers in Germany in the last 30 days?");
        let kinds: Vec<&Item> = r.items.iter().map(|(_, i)| i).collect();
        assert_eq!(
            kinds,
            [
                &Item::Count,
                &Item::Table(1),
                &Item::Table(0),
                &Item::Value(0, 2, "Germany".into()),
                &Item::Date(DateRange::Last(30, Unit::Day))
            ]
        );
        assert!(r.unknown.is_empty(), "{:?}", r.unknown);
    }

    #[test]
    fn recognises_superlatives_comparisons_and_flags() {
        let r = items("Top 5 vip customers with total amount over 1,000 by status");
        let kinds: Vec<&Item> = r.items.iter().map(|(_, i)| i).collect();
        assert_eq!(
            kinds,
            [
                &Item::Top(5),
                &Item::Flag(0, 3, true),
                &Item::Table(0),
                &Item::Column(1, 3),
                &Item::Compare(CmpOp::Gt, 1000.0, None),
                &Item::GroupBy,
                &Item::Column(1, 2)
            ]
        );
        let r = items("What is the median order total?");
        assert!(r.unknown.contains(&"median".to_string()));
    }
}
