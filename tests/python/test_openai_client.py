"""Quarry's /v1 routes through the official OpenAI Python SDK and LangChain's ChatOpenAI.

Run by tests/python_client.rs, which starts the server, a fake LLM and a SQLite fixture and sets:

  QUARRY_E2E_BASE_URL   the server's OpenAI base URL (ends with /v1)
  QUARRY_E2E_API_KEY    a key the server accepts
  QUARRY_E2E_MODEL      the model name the server lists
  QUARRY_E2E_EXPECT     text every answer must show (a value from the result table)

Exits 77 when the `openai` package is not installed (the Rust test then reports a skip).
"""

import os
import sys

try:
    import openai
    from openai import OpenAI
except ImportError:
    print("skipped: python openai package not installed")
    sys.exit(77)

BASE_URL = os.environ["QUARRY_E2E_BASE_URL"]
API_KEY = os.environ["QUARRY_E2E_API_KEY"]
MODEL = os.environ["QUARRY_E2E_MODEL"]
EXPECT = os.environ["QUARRY_E2E_EXPECT"]
QUESTION = "Which customers live in Paris?"


def check_answer(text, where):
    """The reply shows progress in <think>, then the plan, the SQL and the result table."""
    assert "<think>" in text and "</think>" in text, f"{where}: no <think> section in {text!r}"
    answer = text[text.index("</think>"):]
    assert "**Query plan:**" in answer, f"{where}: no query plan in {text!r}"
    assert "```sql" in answer, f"{where}: no SQL block in {text!r}"
    assert EXPECT in answer, f"{where}: {EXPECT!r} is not in the results: {text!r}"


def client(api_key=API_KEY):
    return OpenAI(base_url=BASE_URL, api_key=api_key, timeout=120, max_retries=0)


def test_models_list():
    ids = [m.id for m in client().models.list()]
    assert ids == [MODEL], ids


def test_wrong_key_is_refused():
    try:
        client("not-the-key").models.list()
    except openai.AuthenticationError as e:
        assert e.status_code == 401
    else:
        raise AssertionError("a wrong key was accepted")


def test_chat_not_streamed():
    reply = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=False
    )
    assert reply.object == "chat.completion", reply
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "stop"
    check_answer(reply.choices[0].message.content, "chat")


def test_chat_without_stream_field_is_one_json_reply():
    # The SDK leaves `stream` out unless asked; it must still get one chat.completion back.
    reply = client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert reply.object == "chat.completion", reply
    check_answer(reply.choices[0].message.content, "chat without stream field")


def test_chat_streamed():
    stream = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 2, f"only {len(chunks)} chunks"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check_answer(text, "chat stream")


def test_legacy_completion():
    reply = client().completions.create(model=MODEL, prompt=QUESTION, stream=False)
    assert reply.object == "text_completion", reply
    check_answer(reply.choices[0].text, "completion")


def test_langchain():
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        print("langchain_openai not installed: LangChain checks skipped")
        return
    llm = ChatOpenAI(base_url=BASE_URL, api_key=API_KEY, model=MODEL, timeout=120, max_retries=0)
    check_answer(llm.invoke(QUESTION).content, "langchain invoke")
    text = "".join(chunk.content for chunk in llm.stream(QUESTION))
    check_answer(text, "langchain stream")


def main():
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"ok     {name}")
        except Exception as e:  # report every failure, not only the first
            failed += 1
            print(f"FAILED {name}: {type(e).__name__}: {e}")
    print(f"openai {openai.__version__}: {len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
