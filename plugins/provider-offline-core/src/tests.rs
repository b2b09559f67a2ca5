//! The translator on two made-up schemas that share no table names (a library and a fleet of
//! vehicles), so nothing can be hard-coded, through the prompt exactly as the host renders it.

use super::*;

/// A library, as the host renders it for PostgreSQL (with a non-default schema on one table).
const LIBRARY: &str = "You translate questions about a PostgreSQL database into one read-only SQL query.\n\
Rules:\n- Write exactly one SELECT.\n\nPostgreSQL notes:\nUse ILIKE.\n\nSchema:\n\
-- ~40 rows\nCREATE TABLE authors (\n  id integer PRIMARY KEY,\n  full_name text NOT NULL, -- e.g. 'Ada Byron', 'Karl Marx'\n  \
nationality text, -- e.g. 'British', 'German', 'French'\n  born date,\n);\n\
-- ~500 rows\nCREATE TABLE books (\n  id integer PRIMARY KEY,\n  title text NOT NULL, -- e.g. 'Dune', 'Emma'\n  \
author_id integer NOT NULL REFERENCES authors(id),\n  genre character varying(30), -- e.g. 'fiction', 'science', 'history'\n  \
list_price numeric(8,2), -- e.g. 12.5, 30\n  published_on date,\n  is_available boolean,\n);\n\
CREATE TABLE members (\n  id integer PRIMARY KEY,\n  first_name text,\n  last_name text,\n  email text, -- [SENSITIVE]\n  \
city text, -- e.g. 'Lyon', 'Oslo'\n  joined_at timestamp with time zone,\n);\n\
CREATE TABLE loans (\n  id bigint PRIMARY KEY,\n  book_id integer NOT NULL REFERENCES books(id),\n  \
member_id integer NOT NULL REFERENCES members(id),\n  loaned_at timestamp without time zone NOT NULL,\n  \
late_fee numeric(6,2),\n  status text, -- e.g. 'returned', 'open', 'lost'\n);\n\n\
Answer with one JSON object and nothing else: {\"description\": \"<one sentence>\", \"sql\": \"<the query>\"}";

/// A fleet of vehicles, as rendered for SQLite (upper-case types, as SQLite declares them).
const FLEET: &str = "You translate questions about a SQLite database into one read-only SQL query.\n\nSchema:\n\
CREATE TABLE depots (\n  depot_id INTEGER PRIMARY KEY,\n  depot_name TEXT, -- e.g. 'North', 'Harbour'\n  region TEXT, -- e.g. 'Alps', 'Coast'\n);\n\
CREATE TABLE vehicles (\n  vehicle_id INTEGER PRIMARY KEY,\n  plate TEXT,\n  model TEXT, -- e.g. 'Transit', 'Sprinter'\n  \
depot_id INTEGER REFERENCES depots(depot_id),\n  mileage INTEGER,\n  purchase_cost REAL,\n  in_service BOOLEAN,\n);\n\
CREATE TABLE trips (\n  trip_id INTEGER PRIMARY KEY,\n  vehicle_id INTEGER NOT NULL REFERENCES vehicles(vehicle_id),\n  \
started_at DATETIME,\n  distance_km REAL,\n  fuel_cost REAL,\n  driver TEXT, -- e.g. 'Kim', 'Lee'\n);\n\n\
Answer with one JSON object and nothing else: {\"description\": \"<one sentence>\", \"sql\": \"<the query>\"}";

fn ask(system: &str, question: &str) -> Answer {
    respond(&[
        Message { role: Role::System, content: system.into() },
        Message { role: Role::User, content: question.into() },
    ])
}

fn sql(system: &str, question: &str) -> String {
    let a = ask(system, question);
    let sql = a.sql.unwrap_or_else(|| panic!("no SQL for {question:?}: {}", a.description));
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn declined(system: &str, question: &str) {
    let a = ask(system, question);
    assert!(a.sql.is_none(), "{question:?} should be declined, got {:?}", a.sql);
    assert!(a.description.starts_with("The offline provider cannot answer this question"), "{}", a.description);
    assert!(a.description.contains("Configure an LLM provider"), "{}", a.description);
}

#[test]
fn counts_with_value_filters_and_dates() {
    assert_eq!(sql(LIBRARY, "How many books are there?"), "SELECT COUNT(*) AS book_count FROM books");
    assert_eq!(
        sql(LIBRARY, "How many science books?"),
        "SELECT COUNT(*) AS book_count FROM books WHERE genre = 'science'"
    );
    assert_eq!(
        sql(LIBRARY, "How many loans in 2024?"),
        "SELECT COUNT(*) AS loan_count FROM loans WHERE loaned_at >= '2024-01-01' AND loaned_at < '2025-01-01'"
    );
    assert_eq!(
        sql(FLEET, "How many trips in the last 30 days?"),
        "SELECT COUNT(*) AS trip_count FROM trips WHERE started_at >= date('now', '-30 days')"
    );
    assert_eq!(
        sql(LIBRARY, "how many members joined last month"),
        "SELECT COUNT(*) AS member_count FROM members WHERE joined_at >= date_trunc('month', CURRENT_DATE) - INTERVAL '1 months' AND joined_at < date_trunc('month', CURRENT_DATE)"
    );
    assert_eq!(
        sql(FLEET, "How many vehicles are in service?"),
        "SELECT COUNT(*) AS vehicle_count FROM vehicles WHERE in_service = 1"
    );
}

#[test]
fn filters_join_along_foreign_keys() {
    // The value lives in the referenced table: the count joins to it.
    assert_eq!(
        sql(LIBRARY, "How many books by British authors?"),
        "SELECT COUNT(*) AS book_count FROM books b JOIN authors a ON b.author_id = a.id WHERE a.nationality = 'British'"
    );
    assert_eq!(sql(LIBRARY, "List loans with status lost"), "SELECT * FROM loans WHERE status = 'lost'");
    assert_eq!(sql(LIBRARY, "loans with status overdue"), "SELECT * FROM loans WHERE LOWER(status) = 'overdue'");
    assert_eq!(sql(LIBRARY, "books where genre is Poetry"), "SELECT * FROM books WHERE LOWER(genre) = 'poetry'");
    assert_eq!(sql(FLEET, "Show vehicles with mileage over 100,000"), "SELECT * FROM vehicles WHERE mileage > 100000");
    assert_eq!(
        sql(FLEET, "trips in the Alps region this year"),
        "SELECT DISTINCT t.* FROM trips t JOIN vehicles v ON t.vehicle_id = v.vehicle_id JOIN depots d ON v.depot_id = d.depot_id WHERE d.region = 'Alps' AND t.started_at >= date('now', 'start of year')"
            .replace("SELECT DISTINCT t.*", "SELECT t.*")
    );
}

#[test]
fn aggregates_and_groups() {
    assert_eq!(
        sql(LIBRARY, "What is the average list price?"),
        "SELECT AVG(list_price) AS average_list_price FROM books"
    );
    assert_eq!(
        sql(LIBRARY, "average book price per genre"),
        "SELECT genre, AVG(list_price) AS average_list_price FROM books GROUP BY genre ORDER BY average_list_price DESC"
    );
    assert_eq!(
        sql(FLEET, "total distance km by depot"),
        "SELECT d.depot_name, SUM(t.distance_km) AS total_distance_km FROM trips t JOIN vehicles v ON t.vehicle_id = v.vehicle_id JOIN depots d ON v.depot_id = d.depot_id GROUP BY d.depot_id, d.depot_name ORDER BY total_distance_km DESC"
    );
    assert_eq!(
        sql(FLEET, "number of trips per month"),
        "SELECT strftime('%Y-%m', started_at) AS month, COUNT(*) AS trip_count FROM trips GROUP BY strftime('%Y-%m', started_at) ORDER BY strftime('%Y-%m', started_at)"
    );
    assert_eq!(sql(FLEET, "What is the highest mileage?"), "SELECT MAX(mileage) AS max_mileage FROM vehicles");
    assert_eq!(
        sql(LIBRARY, "How many books per author?"),
        "SELECT a.full_name, COUNT(*) AS book_count FROM books b JOIN authors a ON b.author_id = a.id GROUP BY a.id, a.full_name ORDER BY book_count DESC"
    );
}

#[test]
fn top_n_and_superlatives() {
    assert_eq!(
        sql(LIBRARY, "Top 3 books by list price"),
        "SELECT title, list_price FROM books WHERE list_price IS NOT NULL ORDER BY list_price DESC LIMIT 3"
    );
    assert_eq!(
        sql(LIBRARY, "What is the most expensive book?"),
        "SELECT title, list_price FROM books WHERE list_price IS NOT NULL ORDER BY list_price DESC LIMIT 1"
    );
    assert_eq!(
        sql(LIBRARY, "Which member has the most loans?"),
        "SELECT m.first_name, m.last_name, COUNT(*) AS loan_count FROM loans l JOIN members m ON l.member_id = m.id GROUP BY m.id, m.first_name, m.last_name ORDER BY loan_count DESC LIMIT 1"
    );
    assert_eq!(
        sql(FLEET, "which vehicle has the highest total fuel cost"),
        "SELECT v.plate, SUM(t.fuel_cost) AS total_fuel_cost FROM trips t JOIN vehicles v ON t.vehicle_id = v.vehicle_id GROUP BY v.vehicle_id, v.plate ORDER BY total_fuel_cost DESC LIMIT 1"
    );
    assert_eq!(
        sql(FLEET, "What is the most common vehicle model?"),
        "SELECT model, COUNT(*) AS count FROM vehicles GROUP BY model ORDER BY count DESC LIMIT 1"
    );
}

#[test]
fn declines_what_it_does_not_understand() {
    declined(LIBRARY, "What is the median list price?");
    declined(LIBRARY, "Which authors have never had a book loaned twice in a row?");
    declined(FLEET, "Rank depots by the growth of their trip count");
    declined(FLEET, "How are the drivers feeling today?");
    declined(LIBRARY, "");
    let a = respond(&[Message { role: Role::User, content: "How many books?".into() }]);
    assert!(a.sql.is_none() && a.description.contains("no database schema"));
}

#[test]
fn repairs_keep_an_empty_result_and_give_up_on_errors() {
    let base = vec![
        Message { role: Role::System, content: LIBRARY.into() },
        Message { role: Role::User, content: "How many books?".into() },
        Message { role: Role::Assistant, content: "{\"sql\": \"SELECT COUNT(*) FROM books\"}".into() },
    ];
    let mut empty = base.clone();
    empty.push(Message {
        role: Role::User,
        content: "That query ran but returned no rows. If … \nAnswer with one JSON object and nothing else: {}".into(),
    });
    assert_eq!(respond(&empty).sql.as_deref(), Some("SELECT COUNT(*) FROM books"));
    let mut failed = base;
    failed.push(Message {
        role: Role::User,
        content: "The database rejected that query with this error:\nboom\nWrite a corrected query.\nAnswer with one JSON object and nothing else: {}".into(),
    });
    let a = respond(&failed);
    assert!(a.sql.is_none() && a.description.contains("cannot repair"));
    // After its own refusal it gives the same reason again.
    let refused = vec![
        Message { role: Role::System, content: LIBRARY.into() },
        Message { role: Role::User, content: "What is the median list price?".into() },
        Message {
            role: Role::User,
            content: "Your answer contained no SQL query (x).\nAnswer with one JSON object and nothing else: {}".into(),
        },
    ];
    let a = respond(&refused);
    assert!(a.sql.is_none() && a.description.contains("\"median\""), "{}", a.description);
}

#[test]
fn dialects_quote_and_date_differently() {
    let mysql = FLEET.replace("a SQLite database", "a MySQL database");
    assert_eq!(
        sql(&mysql, "How many trips in the last 2 weeks?"),
        "SELECT COUNT(*) AS trip_count FROM trips WHERE started_at >= CURRENT_DATE - INTERVAL 14 DAY"
    );
    let answer = ask(LIBRARY, "How many books?");
    let json: serde_json::Value = serde_json::from_str(&answer.to_json()).expect("json");
    assert_eq!(json["sql"], "SELECT COUNT(*) AS book_count\nFROM books");
}

#[test]
fn compounds_distributions_and_price_verbs() {
    // "member loans": the last noun is the entity.
    assert_eq!(
        sql(LIBRARY, "How many member loans are open?"),
        "SELECT COUNT(*) AS loan_count FROM loans WHERE status = 'open'"
    );
    assert_eq!(
        sql(LIBRARY, "What is the distribution of loan statuses?"),
        "SELECT status, COUNT(*) AS loan_count FROM loans GROUP BY status ORDER BY loan_count DESC"
    );
    assert_eq!(
        sql(LIBRARY, "How many books cost less than 20?"),
        "SELECT COUNT(*) AS book_count FROM books WHERE list_price < 20"
    );
    assert_eq!(
        sql(FLEET, "Trips per driver"),
        "SELECT driver, COUNT(*) AS trip_count FROM trips GROUP BY driver ORDER BY trip_count DESC"
    );
    assert_eq!(
        sql(FLEET, "Which model has the most vehicles?"),
        "SELECT model, COUNT(*) AS count FROM vehicles GROUP BY model ORDER BY count DESC LIMIT 1"
    );
    // A verb is not the head of a compound: "members loaned" is not the loans table alone.
    declined(LIBRARY, "How many members loaned in 2024?");
    // "cost" names columns of two tables here; the question names neither table.
    declined(FLEET, "What is the total cost?");
}
