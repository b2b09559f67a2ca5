//! Words: splitting a question into tokens, light stemming, a few synonyms, and splitting
//! identifiers (`order_items`, `signupDate`) into the words they are made of.

/// One token of the question.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Lower-case text.
    pub text: String,
    /// The text as written (for values such as names).
    pub raw: String,
    /// The stem, with synonyms folded (see [`stem`]).
    pub stem: String,
    /// A number, when the token is one (`1,000`, `$25`, `2.5`, `10k`).
    pub number: Option<f64>,
    /// Written between quotes in the question.
    pub quoted: bool,
}

/// Split a question into tokens: words, numbers and quoted strings.
pub fn tokenize(question: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<char> = question.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if (c == '\'' || c == '"' || c == '“' || c == '‘') && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let close = match c {
                '“' => '”',
                '‘' => '’',
                other => other,
            };
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == close) {
                let raw: String = chars[i + 1..i + 1 + end].iter().collect();
                if !raw.trim().is_empty() {
                    out.push(Token {
                        text: raw.to_lowercase(),
                        stem: raw.to_lowercase(),
                        raw,
                        number: None,
                        quoted: true,
                    });
                }
                i += end + 2;
                continue;
            }
        }
        if c.is_alphanumeric() || (c == '$' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let inner = (d == ',' || d == '.' || d == '-' || d == '\'')
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
                    && chars[i - 1].is_alphanumeric();
                // `1,000` and `2.5` are one number; `don't` and `e-mail` one word; `a,b` two.
                let keep = d.is_alphanumeric()
                    || (inner && (d != ',' || (chars[i - 1].is_ascii_digit() && chars[i + 1].is_ascii_digit())));
                if !keep {
                    break;
                }
                i += 1;
            }
            let raw: String = chars[start..i].iter().collect();
            let raw = raw.trim_end_matches('\'').to_string();
            let text = raw.to_lowercase();
            let number = parse_number(&text);
            let stem = if number.is_some() { text.clone() } else { stem(&text) };
            out.push(Token { text, raw, stem, number, quoted: false });
            continue;
        }
        i += 1;
    }
    out
}

/// `1,000`, `$25`, `2.5`, `10k` → the number.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim_start_matches('$').replace(',', "");
    let (t, scale) = match t.strip_suffix('k') {
        Some(r) if !r.is_empty() => (r.to_string(), 1000.0),
        _ => (t, 1.0),
    };
    if t.is_empty() || !t.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<f64>().ok().map(|n| n * scale)
}

/// Words that mean the same thing for matching, folded to one stem (stemmed forms on both sides).
const SYNONYMS: &[(&str, &str)] = &[
    ("client", "customer"),
    ("buyer", "customer"),
    ("shopper", "customer"),
    ("purchaser", "customer"),
    ("staff", "employe"),
    ("worker", "employe"),
    ("personnel", "employe"),
    ("purchas", "order"),
    ("qty", "quantity"),
    ("dept", "department"),
    ("cat", "category"),
    ("wage", "salary"),
    ("nation", "country"),
    ("town", "city"),
    ("sku", "product"),
];

/// A light stem: plural and common suffixes removed, synonyms folded. The same function is
/// applied to question words and to schema names, so both sides meet.
pub fn stem(word: &str) -> String {
    let mut w = word.to_lowercase();
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if n > 5 && w.ends_with("sis") {
        // "diagnosis" and "diagnoses" meet at "diagnos".
        w.truncate(w.len() - 2);
    } else if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.pop();
    }
    for (suffix, min) in [("ment", 7), ("ing", 6), ("ed", 5)] {
        if w.chars().count() >= min && w.ends_with(suffix) {
            w.truncate(w.len() - suffix.len());
            break;
        }
    }
    if w.chars().count() > 3 && w.ends_with('e') {
        w.pop();
    }
    // A doubled final consonant (`shipp`, `enroll`) is folded to one.
    let bytes = w.as_bytes();
    if bytes.len() > 3 {
        let (a, b) = (bytes[bytes.len() - 1], bytes[bytes.len() - 2]);
        if a == b && a.is_ascii_alphabetic() && !b"aeiousz".contains(&a) {
            w.pop();
        }
    }
    match SYNONYMS.iter().find(|(from, _)| *from == w) {
        Some((_, to)) => to.to_string(),
        None => w,
    }
}

/// The words of an identifier: `order_items` → `["order", "items"]`, `signupDate` → `["signup", "date"]`.
pub fn identifier_words(name: &str) -> Vec<String> {
    let bare = name.rsplit('.').next().unwrap_or(name);
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in bare.chars() {
        if c == '_' || c == '-' || c == ' ' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The stems of an identifier's words.
pub fn identifier_stems(name: &str) -> Vec<String> {
    identifier_words(name).iter().map(|w| stem(w)).collect()
}

/// Words that carry no meaning of their own in a question about data.
pub const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "with",
    "and",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "do",
    "does",
    "did",
    "there",
    "what",
    "whats",
    "which",
    "who",
    "whom",
    "whose",
    "me",
    "us",
    "i",
    "we",
    "you",
    "please",
    "all",
    "any",
    "that",
    "this",
    "these",
    "those",
    "it",
    "its",
    "their",
    "they",
    "them",
    "have",
    "has",
    "had",
    "having",
    "by",
    "our",
    "my",
    "your",
    "as",
    "currently",
    "now",
    "exist",
    "exists",
    "existing",
    "registered",
    "recorded",
    "stored",
    "database",
    "db",
    "table",
    "data",
    "system",
    "records",
    "record",
    "entries",
    "entry",
    "rows",
    "row",
    "listed",
    "available",
    "overall",
    "altogether",
    "combined",
    "across",
    "ever",
    "so",
    "far",
    "can",
    "could",
    "would",
    "should",
    "will",
    "tell",
    "know",
    "want",
    "see",
    "made",
    "placed",
    "got",
    "get",
    "give",
    "find",
    "show",
    "list",
    "display",
    "return",
    "fetch",
    "print",
    "each",
    "per",
    "whole",
    "entire",
    "value",
    "values",
    "up",
    "how",
    "many",
    "much",
    "number",
    "count",
    "total",
    "sum",
    "amount",
    "name",
    "names",
    "detail",
    "details",
    "information",
    "info",
    "out",
    "just",
    "only",
    "also",
    "here",
    "offered",
    "work",
    "works",
    "working",
    "employed",
    "used",
    "place",
    "make",
    "paid",
    "where",
    "when",
    "some",
    "kind",
    "kinds",
    "type",
    "types",
];
