//! Reading a question the way the cache and the example library compare them: normalised
//! content tokens, the literals it names (numbers, months, quarter codes), whether it speaks
//! of time relative to now, and its named values ([`super::names`]).
//!
//! Normalisation, in order: lowercase; split into words and numeric literals (`$60k`, `1,000`,
//! `5%`, `2.5m` each become one canonical literal such as `$60000`, `1000`, `5%`, `2500000`;
//! number words become digits, so "top ten" reads as "top 10"); contractions of "not" become
//! `not`; "how many" / "number of" / "count" all become `count`; stop words (articles,
//! auxiliaries, pronouns, filler verbs like "show" and "list") are dropped; plurals, `-ing` and
//! `-ed` are stemmed. Negations, comparatives and `or` are never dropped: they change the SQL.

/// A question, read once: what every comparison needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The question as asked.
    pub raw: String,
    /// The content tokens in order (stemmed, stop words dropped, literals canonical).
    pub tokens: Vec<String>,
    /// The cache key: `tokens` joined by single spaces, or — when the question has only stop
    /// words — all its words, so such questions do not collide. Empty without any word.
    pub normalized: String,
    /// The literals, sorted: canonical numbers (`$60000`, `5%`, `2024`), month and weekday
    /// names, words that contain digits (`q1`, `fy2024`). Two questions with different literals
    /// never share an answer.
    pub literals: Vec<String>,
    /// Whether the question speaks of time relative to now ("today", "last month", "ytd",
    /// "trailing 12 months", …): SQL written for it may hold dates that go stale.
    pub relative_time: bool,
    /// The named values it mentions (quoted strings, capitalised words inside a sentence; see
    /// [`super::names`]): a hit found by comparing vectors needs the same ones.
    pub names: Vec<String>,
}

impl Question {
    /// Read `raw`.
    pub fn new(raw: &str) -> Self {
        let lexemes = merge_multipliers(lex(&raw.to_lowercase()));
        let relative_time = is_relative_time(&lexemes);
        let mut tokens = Vec::new();
        let mut literals = Vec::new();
        let mut i = 0;
        while i < lexemes.len() {
            let lexeme = &lexemes[i];
            match lexeme {
                Lexeme::Number(n) => {
                    literals.push(n.clone());
                    tokens.push(n.clone());
                }
                Lexeme::Word(w) => {
                    let next = lexemes.get(i + 1).and_then(Lexeme::word);
                    // "how many" and "number of" are both a count.
                    if (w == "how" && next == Some("many")) || (w == "number" && next == Some("of")) {
                        tokens.push("count".to_string());
                        i += 2;
                        continue;
                    }
                    if let Some(token) = content_token(w) {
                        if is_calendar_name(&token) || token.chars().any(|c| c.is_ascii_digit()) {
                            literals.push(token.clone());
                        }
                        tokens.push(token);
                    }
                }
            }
            i += 1;
        }
        literals.sort();
        let normalized = if tokens.is_empty() {
            lexemes.iter().filter_map(Lexeme::word).collect::<Vec<_>>().join(" ")
        } else {
            tokens.join(" ")
        };
        let names = super::names::named_values(raw);
        Question { raw: raw.to_string(), tokens, normalized, literals, relative_time, names }
    }
}

/// The cache key of `question` (see [`Question::normalized`]).
pub fn normalize(question: &str) -> String {
    Question::new(question).normalized
}

/// One piece of a lowercased question.
#[derive(Debug, Clone, PartialEq)]
enum Lexeme {
    /// A run of letters and digits (apostrophes removed: "customer's" → "customers").
    Word(String),
    /// A canonical numeric literal: optional currency symbol, the value, optional `%`.
    Number(String),
}

impl Lexeme {
    fn word(&self) -> Option<&str> {
        match self {
            Lexeme::Word(w) => Some(w),
            Lexeme::Number(_) => None,
        }
    }
}

const CURRENCY: &[char] = &['$', '€', '£', '¥', '₹'];

/// Split lowercased text into words and numeric literals; everything else separates them.
fn lex(text: &str) -> Vec<Lexeme> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_number = c.is_ascii_digit()
            || (CURRENCY.contains(&c) && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) && !prev_is_alnum(&chars, i));
        if starts_number && !prev_is_alnum(&chars, i) {
            let (lexeme, next) = number_at(&chars, i);
            out.push(lexeme);
            i = next;
        } else if c.is_alphanumeric() {
            let mut word = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || is_apostrophe_inside(&chars, i)) {
                if chars[i].is_alphanumeric() {
                    word.push(chars[i]);
                }
                i += 1;
            }
            out.push(Lexeme::Word(word));
        } else {
            i += 1;
        }
    }
    out
}

fn prev_is_alnum(chars: &[char], i: usize) -> bool {
    i > 0 && chars[i - 1].is_alphanumeric()
}

fn is_apostrophe_inside(chars: &[char], i: usize) -> bool {
    matches!(chars[i], '\'' | '’')
        && i > 0
        && chars[i - 1].is_alphabetic()
        && chars.get(i + 1).is_some_and(|c| c.is_alphabetic())
}

/// Read the numeric literal starting at `start`: `$`, digits with `,` thousands separators, a
/// decimal part, a `k`/`m`/`b`/`t` multiplier, `%`. Returns it and where reading stopped.
fn number_at(chars: &[char], start: usize) -> (Lexeme, usize) {
    let mut i = start;
    let mut currency = None;
    if CURRENCY.contains(&chars[i]) {
        currency = Some(chars[i]);
        i += 1;
    }
    let mut digits = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            digits.push(c);
            i += 1;
        } else if c == ',' && is_thousands_group(chars, i + 1) && !digits.contains('.') {
            i += 1;
        } else if c == '.' && !digits.contains('.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            digits.push('.');
            i += 1;
        } else {
            break;
        }
    }
    let mut value: f64 = digits.parse().unwrap_or(0.0);
    // A multiplier suffix only when it ends the word ("10k", not "10km").
    if let Some(&m) = chars.get(i) {
        let factor = match m {
            'k' => Some(1e3),
            'm' => Some(1e6),
            'b' => Some(1e9),
            't' => Some(1e12),
            _ => None,
        };
        if let Some(factor) = factor.filter(|_| !chars.get(i + 1).is_some_and(|c| c.is_alphanumeric())) {
            value *= factor;
            i += 1;
        }
    }
    let mut percent = false;
    if chars.get(i) == Some(&'%') {
        percent = true;
        i += 1;
    }
    if currency.is_none() && chars.get(i).is_some_and(|c| CURRENCY.contains(c)) {
        currency = Some(chars[i]);
        i += 1;
    }
    // A word glued to the number ("10th", "3x") stays part of the literal, so "10th" ≠ "10".
    let mut tail = String::new();
    while i < chars.len() && chars[i].is_alphanumeric() {
        tail.push(chars[i]);
        i += 1;
    }
    (Lexeme::Number(canonical_number(currency, value, percent, &tail)), i)
}

/// `,` followed by exactly three digits (then not a fourth): a thousands separator.
fn is_thousands_group(chars: &[char], from: usize) -> bool {
    (0..3).all(|k| chars.get(from + k).is_some_and(|c| c.is_ascii_digit()))
        && !chars.get(from + 3).is_some_and(|c| c.is_ascii_digit())
}

fn canonical_number(currency: Option<char>, value: f64, percent: bool, tail: &str) -> String {
    let mut out = String::new();
    if let Some(c) = currency {
        out.push(c);
    }
    // `Display` for f64 is the shortest exact form and never uses an exponent: 1500, 0.5.
    out.push_str(&value.to_string());
    if percent {
        out.push('%');
    }
    out.push_str(tail);
    out
}

/// Number words as digits ("ten" → 10); a number followed by "thousand", "million", … or
/// "percent" is merged into one literal ("60 thousand" → 60000, "5 percent" → 5%).
fn merge_multipliers(lexemes: Vec<Lexeme>) -> Vec<Lexeme> {
    let mut out: Vec<Lexeme> = Vec::with_capacity(lexemes.len());
    for lexeme in lexemes {
        let lexeme = match &lexeme {
            Lexeme::Word(w) => match number_word(w) {
                Some(n) => Lexeme::Number(n.to_string()),
                None => lexeme,
            },
            Lexeme::Number(_) => lexeme,
        };
        if let (Some(Lexeme::Number(prev)), Lexeme::Word(w)) = (out.last_mut(), &lexeme) {
            let factor = match w.as_str() {
                "thousand" | "k" => Some(1e3),
                "million" | "mn" => Some(1e6),
                "billion" | "bn" => Some(1e9),
                "trillion" => Some(1e12),
                _ => None,
            };
            if let Some(merged) = factor.and_then(|f| scale_literal(prev, f)) {
                *prev = merged;
                continue;
            }
            if matches!(w.as_str(), "percent" | "pct") && !prev.ends_with('%') {
                prev.push('%');
                continue;
            }
        }
        out.push(lexeme);
    }
    out
}

/// `literal` × `factor`, when it is a plain number with an optional currency symbol.
fn scale_literal(literal: &str, factor: f64) -> Option<String> {
    let (currency, digits) = match literal.chars().next() {
        Some(c) if CURRENCY.contains(&c) => (Some(c), &literal[c.len_utf8()..]),
        _ => (None, literal),
    };
    let value: f64 = digits.parse().ok()?;
    Some(canonical_number(currency, value * factor, false, ""))
}

fn number_word(word: &str) -> Option<u32> {
    Some(match word {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "dozen" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        "hundred" => 100,
        _ => return None,
    })
}

/// Words that carry no meaning for the SQL. Deliberately absent: negations (`not`, `no`,
/// `without`, `except`, `never`, `only`), comparatives and ordering words (`more`, `less`,
/// `over`, `under`, `top`, `first`, `last`, `before`, `after`, `between`), `or`, `when`, `where`,
/// and words that make time relative (`this`, `currently`, "so far"): "sales this month" must
/// not share a key with "sales per month".
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "for", "to", "in", "on", "at", "by", "with", "from", "per", "as", "into", "within",
    "and", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "doing", "done", "have",
    "has", "had", "having", "there", "here", "it", "its", "that", "these", "those", "what", "whats", "which", "who",
    "whom", "how", "i", "me", "my", "mine", "we", "our", "ours", "us", "you", "your", "yours", "they", "them",
    "their", "he", "she", "his", "her", "please", "pls", "show", "list", "display", "give", "get", "find", "tell",
    "return", "fetch", "see", "view", "retrieve", "provide", "can", "could", "would", "will", "shall", "should",
    "might", "must", "just", "all", "every", "each", "any", "some", "also", "let", "lets", "know", "want", "need",
    "like", "kindly", "then", "about",
];

/// Contractions (apostrophe already removed) and words that mean "not".
const NEGATIONS: &[&str] = &[
    "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "havent", "hasnt", "hadnt", "cant", "cannot",
    "wont", "wouldnt", "shouldnt", "couldnt",
];

const MONTHS: &[(&str, &str)] = &[
    ("january", "january"),
    ("jan", "january"),
    ("february", "february"),
    ("feb", "february"),
    ("march", "march"),
    ("mar", "march"),
    ("april", "april"),
    ("apr", "april"),
    ("may", "may"),
    ("june", "june"),
    ("jun", "june"),
    ("july", "july"),
    ("jul", "july"),
    ("august", "august"),
    ("aug", "august"),
    ("september", "september"),
    ("sep", "september"),
    ("sept", "september"),
    ("october", "october"),
    ("oct", "october"),
    ("november", "november"),
    ("nov", "november"),
    ("december", "december"),
    ("dec", "december"),
];

const WEEKDAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

fn is_calendar_name(token: &str) -> bool {
    MONTHS.iter().any(|(_, full)| *full == token) || WEEKDAYS.contains(&token)
}

/// The token a word contributes, if any: negations as `not`, counts as `count`, months by full
/// name, stop words dropped, the rest stemmed.
fn content_token(word: &str) -> Option<String> {
    if NEGATIONS.contains(&word) {
        return Some("not".to_string());
    }
    if let Some((_, full)) = MONTHS.iter().find(|(name, _)| *name == word) {
        return Some((*full).to_string());
    }
    if WEEKDAYS.contains(&word) || word.strip_suffix('s').is_some_and(|w| WEEKDAYS.contains(&w)) {
        return Some(word.trim_end_matches('s').to_string());
    }
    if STOP_WORDS.contains(&word) {
        return None;
    }
    if matches!(word, "many" | "number" | "count" | "counts" | "counting" | "counted" | "num") {
        return Some("count".to_string());
    }
    Some(stem(word))
}

/// A light suffix stemmer for English: plurals, `-ing`, `-ed`. It need not produce real words,
/// only the same stem for the forms people write ("orders", "ordered", "ordering" → "order").
pub fn stem(word: &str) -> String {
    if word.chars().any(|c| c.is_ascii_digit()) || !word.is_ascii() {
        return word.to_string();
    }
    let w = word;
    let len = w.len();
    if len > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..len - 3]);
    }
    if len > 4 && (w.ends_with("sses") || w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes")) {
        return w[..len - 2].to_string();
    }
    if len > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..len - 1].to_string();
    }
    if len > 5 && w.ends_with("ing") {
        return undouble(&w[..len - 3]);
    }
    if len > 4 && w.ends_with("ed") && !w.ends_with("eed") {
        return undouble(&w[..len - 2]);
    }
    w.to_string()
}

/// "shipp" → "ship", "runn" → "run": the doubled consonant `-ing`/`-ed` added.
fn undouble(stem: &str) -> String {
    let bytes = stem.as_bytes();
    let n = bytes.len();
    if n >= 3 && bytes[n - 1] == bytes[n - 2] && !b"aeiouslz".contains(&bytes[n - 1]) {
        return stem[..n - 1].to_string();
    }
    stem.to_string()
}

/// Units of time that "this/last/next/… + unit" makes relative.
const TIME_UNITS: &[&str] = &[
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "quarter",
    "quarters",
    "year",
    "years",
    "hour",
    "hours",
    "minute",
    "minutes",
    "weekend",
    "weekends",
    "fortnight",
    "decade",
    "semester",
    "season",
    "fy",
    "fiscal",
    "night",
    "morning",
    "evening",
    "afternoon",
    "h1",
    "h2",
    "q1",
    "q2",
    "q3",
    "q4",
];

/// Words that shift a following unit relative to now.
const RELATIVE_MARKERS: &[&str] = &[
    "this", "last", "next", "previous", "prev", "current", "past", "prior", "coming", "recent", "trailing", "rolling",
];

/// Words that are relative to now on their own.
const RELATIVE_WORDS: &[&str] = &[
    "today",
    "todays",
    "yesterday",
    "yesterdays",
    "tomorrow",
    "tomorrows",
    "tonight",
    "now",
    "ytd",
    "mtd",
    "qtd",
    "wtd",
    "recent",
    "recently",
    "ago",
    "lately",
    "currently",
];

/// Whether lowercased lexemes speak of time relative to now: "today", "yesterday", "ytd", "now";
/// "this/last/next/previous/current/past + unit" (also with a number between: "last 30 days");
/// "rolling N", "trailing N"; "N days ago"; "year to date".
fn is_relative_time(lexemes: &[Lexeme]) -> bool {
    let is_unit =
        |l: Option<&Lexeme>| l.and_then(Lexeme::word).is_some_and(|w| TIME_UNITS.contains(&w) || is_calendar_word(w));
    for (i, lexeme) in lexemes.iter().enumerate() {
        let Some(word) = lexeme.word() else { continue };
        if RELATIVE_WORDS.contains(&word) {
            return true;
        }
        if RELATIVE_MARKERS.contains(&word) {
            if matches!(word, "rolling" | "trailing") && matches!(lexemes.get(i + 1), Some(Lexeme::Number(_))) {
                return true;
            }
            // The unit may follow a count: "last 30 days", "past few weeks", "last couple of months".
            let mut j = i + 1;
            while j <= i + 3 && lexemes.get(j).is_some_and(is_count_filler) {
                j += 1;
            }
            if is_unit(lexemes.get(j)) {
                return true;
            }
        }
        if matches!(word, "year" | "month" | "quarter" | "week")
            && lexemes.get(i + 1).and_then(Lexeme::word) == Some("to")
            && lexemes.get(i + 2).and_then(Lexeme::word) == Some("date")
        {
            return true;
        }
    }
    false
}

/// What may stand between a relative marker and its unit: a number, "few", "couple of", ….
fn is_count_filler(lexeme: &Lexeme) -> bool {
    match lexeme {
        Lexeme::Number(_) => true,
        Lexeme::Word(w) => matches!(w.as_str(), "few" | "several" | "couple" | "of" | "a" | "the" | "many"),
    }
}

fn is_calendar_word(word: &str) -> bool {
    MONTHS.iter().any(|(name, _)| *name == word) || WEEKDAYS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(q: &str) -> String {
        Question::new(q).normalized
    }

    #[test]
    fn normalisation_drops_case_punctuation_stop_words_and_stems() {
        assert_eq!(norm("How many customers are there?"), "count customer");
        assert_eq!(norm("how many customers"), "count customer");
        assert_eq!(norm("What is the NUMBER of orders shipped?"), "count order ship");
        assert_eq!(norm("Show me all categories, please!"), "category");
        assert_eq!(norm("orders ordering ordered"), "order order order");
        assert_eq!(norm("  Customers   WITHOUT orders "), "customer without order");
        assert_eq!(norm("customers who don't have orders"), "customer not order");
        assert_eq!(norm("the customer's boxes"), "customer box");
        // Words that make time relative stay: these must not share a cache key.
        assert_eq!(norm("sales per month"), "sale month");
        assert_eq!(norm("sales this month"), "sale this month");
        assert_ne!(norm("revenue so far"), norm("revenue"));
    }

    #[test]
    fn a_question_without_content_words_keeps_its_text() {
        assert_eq!(norm("Show me  ALL!"), "show me all");
        assert_eq!(norm(" ?! "), "");
        assert_eq!(norm(""), "");
    }

    #[test]
    fn numeric_literals_are_canonical() {
        assert_eq!(Question::new("orders over $60k").literals, vec!["$60000"]);
        assert_eq!(Question::new("orders over 60,000 dollars").literals, vec!["60000"]);
        assert_eq!(Question::new("orders over $60 thousand").literals, vec!["$60000"]);
        assert_eq!(Question::new("at least 1,000 units and 5% discount in 2024").literals, vec!["1000", "2024", "5%"]);
        assert_eq!(Question::new("a 5 percent discount").literals, vec!["5%"]);
        assert_eq!(Question::new("top ten products").literals, vec!["10"]);
        assert_eq!(Question::new("top 10 products").literals, vec!["10"]);
        assert_eq!(Question::new("revenue above 2.5m").literals, vec!["2500000"]);
        assert_eq!(Question::new("10k, 10km").literals, vec!["10000", "10km"]);
        assert_eq!(Question::new("sales in Q1 of FY2024").literals, vec!["fy2024", "q1"]);
        assert_eq!(Question::new("sales in March vs. Apr").literals, vec!["april", "march"]);
        assert_eq!(Question::new("orders on 2024-01-31").literals, vec!["1", "2024", "31"]);
        assert!(Question::new("how many customers").literals.is_empty());
    }

    #[test]
    fn relative_time_is_detected() {
        for q in [
            "sales today",
            "What were yesterday's orders?",
            "sales last month",
            "sales this month",
            "revenue in the previous quarter",
            "signups over the past week",
            "orders in the last 30 days",
            "revenue for the last thirty days",
            "revenue ytd",
            "revenue year to date",
            "rolling 12 months revenue",
            "trailing 7 average",
            "orders placed 3 days ago",
            "sales next year",
            "the current fiscal year",
            "recent signups",
            "orders since last monday",
            "signups in the past few weeks",
            "churn over the last couple of months",
        ] {
            assert!(Question::new(q).relative_time, "{q:?} should be relative to now");
        }
        for q in [
            "how many customers",
            "sales in 2024",
            "the last order of each customer",
            "top 5 products",
            "monthly revenue by year",
            "first 30 orders",
            "the last 10 orders",
            "previous orders of this customer",
        ] {
            assert!(!Question::new(q).relative_time, "{q:?} should not be relative to now");
        }
    }

    #[test]
    fn stemming_is_consistent_across_forms() {
        assert_eq!(stem("categories"), "category");
        assert_eq!(stem("shipped"), "ship");
        assert_eq!(stem("running"), "run");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("address"), "address");
        assert_eq!(stem("sales"), "sale");
        assert_eq!(stem("analysis"), "analysis");
        assert_eq!(stem("selling"), "sell");
    }
}
