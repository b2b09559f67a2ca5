//! The named values a question mentions: what an embedding cannot be trusted to tell apart.
//!
//! Sentence embeddings rate "revenue in Berlin" and "revenue in Paris" as nearly the same
//! question, yet the SQL differs by its `WHERE`. So a hit found by comparing vectors is served
//! only when both questions name the same values ([`named_values`]):
//! - quoted strings (`"gold"`, `'EMEA'`, `“Acme Ltd”`), lowercased, spaces collapsed;
//! - capitalised words that do not start a sentence (`Berlin`, `Acme`, `EMEA`), lowercased and
//!   stemmed (so `Berlin's` is `berlin`);
//! - the question's literals (numbers, months, codes: [`super::text::Question::literals`]),
//!   which every similar hit must share anyway.
//!
//! A name written in lower case ("revenue in berlin") or opening the question is not seen: the
//! guard errs towards the LLM only as far as the writer's capitals let it.

use super::text::stem;

/// Quote pairs: an opening mark and the mark that closes it.
const QUOTES: &[(char, char)] = &[('"', '"'), ('\'', '\''), ('`', '`'), ('“', '”'), ('‘', '’'), ('«', '»'), ('„', '“')];

/// The quoted strings and the capitalised words not at the start of a sentence in `raw`,
/// normalised, sorted and without duplicates.
pub fn named_values(raw: &str) -> Vec<String> {
    let chars: Vec<char> = raw.chars().collect();
    let mut names = Vec::new();
    let mut sentence_start = true;
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = quoted_at(&chars, i) {
            let inner: String = chars[i + 1..end].iter().collect();
            let value = inner.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            if !value.is_empty() {
                names.push(value);
            }
            sentence_start = false;
            i = end + 1;
            continue;
        }
        let c = chars[i];
        if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || inner_apostrophe(&chars, i)) {
                i += 1;
            }
            let word: String = chars[start..i].iter().filter(|c| c.is_alphanumeric()).collect();
            if !sentence_start && c.is_uppercase() && word != "I" {
                names.push(stem(&word.to_lowercase()));
            }
            sentence_start = false;
            continue;
        }
        // "?", "!" or "." followed by a space (not the dot of "2.5") ends a sentence.
        let ends_sentence = matches!(c, '?' | '!' | '.') && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if ends_sentence || c == '\n' {
            sentence_start = true;
        }
        i += 1;
    }
    names.sort();
    names.dedup();
    names
}

/// Where the quoted string opening at `i` closes: `i` holds an opening mark that does not follow
/// a letter (an apostrophe in "don't" opens nothing), and its closing mark comes later, not
/// followed by a letter either ("'Joe's Diner'" closes at the last mark).
fn quoted_at(chars: &[char], i: usize) -> Option<usize> {
    let (_, close) = QUOTES.iter().find(|(open, _)| *open == chars[i])?;
    if i > 0 && chars[i - 1].is_alphanumeric() {
        return None;
    }
    if chars.get(i + 1).is_none_or(|c| c.is_whitespace()) {
        return None;
    }
    (i + 2..chars.len())
        .find(|&j| chars[j] == *close && chars[j - 1] != ' ' && !chars.get(j + 1).is_some_and(|c| c.is_alphanumeric()))
}

/// An apostrophe between two letters ("Berlin's", "don't"): part of the word.
fn inner_apostrophe(chars: &[char], i: usize) -> bool {
    matches!(chars[i], '\'' | '’')
        && i > 0
        && chars[i - 1].is_alphabetic()
        && chars.get(i + 1).is_some_and(|c| c.is_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalised_words_inside_a_sentence_are_names() {
        assert_eq!(named_values("What was the revenue in Berlin?"), vec!["berlin"]);
        assert_eq!(named_values("Revenue in Berlin's stores vs New York"), vec!["berlin", "new", "york"]);
        assert_eq!(named_values("Orders from EMEA. Customers in Paris!"), vec!["emea", "paris"]);
        assert_eq!(named_values("How many customers do I have?"), Vec::<String>::new());
        assert!(named_values("Count the customers").is_empty(), "the first word is not a name");
        assert!(named_values("revenue in berlin").is_empty(), "lower case is not seen");
        assert!(named_values("revenue above 2.5m. Total").is_empty());
    }

    #[test]
    fn quoted_strings_are_names() {
        assert_eq!(named_values("customers with status 'gold'"), vec!["gold"]);
        assert_eq!(named_values("customers with status \"Gold  Plus\""), vec!["gold plus"]);
        assert_eq!(named_values("orders of “acme ltd”"), vec!["acme ltd"]);
        assert_eq!(named_values("sales of 'joe's diner' today"), vec!["joe's diner"]);
        assert!(named_values("customers who don't order").is_empty());
        assert!(named_values("it's ' odd").is_empty());
    }

    #[test]
    fn the_same_names_compare_equal_whatever_the_wording() {
        assert_eq!(
            named_values("How much revenue did we make in Berlin?"),
            named_values("Total revenue for Berlin, please")
        );
        assert_ne!(named_values("What was the revenue in Berlin?"), named_values("What was the revenue in Paris?"));
    }
}
