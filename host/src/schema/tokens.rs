//! A token estimate for prompt budgets, without a tokenizer download.
//!
//! The heuristic mimics how BPE tokenizers (cl100k, Llama, Qwen) cut schema text: every run of
//! letters costs one token per started 5 characters (`customer` → 2, `id` → 1), every run of
//! digits one per started 3, each punctuation or symbol character one, and whitespace nothing
//! (it is folded into the next token). On DDL this lands slightly above what those tokenizers
//! count, and close to `chars / 4` on prose; erring high keeps prompts inside their budget.

/// Estimated tokens in `text`.
pub fn estimate_tokens(text: &str) -> usize {
    let mut tokens = 0;
    let mut letters = 0usize;
    let mut digits = 0usize;
    let flush = |letters: &mut usize, digits: &mut usize, tokens: &mut usize| {
        *tokens += letters.div_ceil(5) + digits.div_ceil(3);
        *letters = 0;
        *digits = 0;
    };
    for c in text.chars() {
        if c.is_alphabetic() {
            if digits > 0 {
                flush(&mut letters, &mut digits, &mut tokens);
            }
            letters += 1;
        } else if c.is_ascii_digit() {
            if letters > 0 {
                flush(&mut letters, &mut digits, &mut tokens);
            }
            digits += 1;
        } else {
            flush(&mut letters, &mut digits, &mut tokens);
            if !c.is_whitespace() {
                tokens += 1;
            }
        }
    }
    flush(&mut letters, &mut digits, &mut tokens);
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("customer_id integer"), 2 + 1 + 1 + 2);
        assert_eq!(estimate_tokens("price 12345"), 1 + 2);
        let prose = "How many orders were placed by customers in the last thirty days?";
        let est = estimate_tokens(prose);
        assert!((12..=20).contains(&est), "{est}");
    }
}
