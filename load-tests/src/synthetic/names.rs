//! Word lists synthetic tenants draw from: names (many non-ASCII, each with the ASCII form used in
//! user principal names), titles, departments and office locations.
//!
//! Non-ASCII names are deliberate: they exercise UTF-8 handling end to end, and the ASCII forms
//! are how real tenants usually spell the same person in a UPN.

/// A name as displayed, and its lowercase ASCII form for UPNs.
pub(crate) type Name = (&'static str, &'static str);

pub(crate) const GIVEN_NAMES: &[Name] = &[
    ("Ada", "ada"),
    ("Alan", "alan"),
    ("Grace", "grace"),
    ("Linus", "linus"),
    ("Margaret", "margaret"),
    ("James", "james"),
    ("Mary", "mary"),
    ("Robert", "robert"),
    ("Patricia", "patricia"),
    ("Michael", "michael"),
    ("Jennifer", "jennifer"),
    ("David", "david"),
    ("Sarah", "sarah"),
    ("Priya", "priya"),
    ("Mohammed", "mohammed"),
    ("Fatima", "fatima"),
    ("Kenji", "kenji"),
    ("Aiko", "aiko"),
    ("Olga", "olga"),
    ("Dmitri", "dmitri"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("Björk", "bjork"),
    ("Renée", "renee"),
    ("François", "francois"),
    ("Ingrid", "ingrid"),
    ("Siobhán", "siobhan"),
    ("Chloé", "chloe"),
    ("Jürgen", "jurgen"),
    ("Ångström", "angstrom"),
    ("Çağla", "cagla"),
    ("Þóra", "thora"),
    ("Nguyệt", "nguyet"),
    ("伟", "wei"),
    ("秀英", "xiuying"),
    ("Андрей", "andrei"),
    ("Ελένη", "eleni"),
    ("Amélie", "amelie"),
];

pub(crate) const SURNAMES: &[Name] = &[
    ("Lovelace", "lovelace"),
    ("Turing", "turing"),
    ("Hopper", "hopper"),
    ("Torvalds", "torvalds"),
    ("Hamilton", "hamilton"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Garcia", "garcia"),
    ("Martinez", "martinez"),
    ("Patel", "patel"),
    ("Khan", "khan"),
    ("Tanaka", "tanaka"),
    ("Kowalski", "kowalski"),
    ("Nguyễn", "nguyen"),
    ("Müller", "muller"),
    ("Dvořák", "dvorak"),
    ("Ólafsdóttir", "olafsdottir"),
    ("O'Brien", "obrien"),
    ("Núñez", "nunez"),
    ("Sørensen", "sorensen"),
    ("Håkansson", "hakansson"),
    ("Łęcka", "lecka"),
    ("Öztürk", "ozturk"),
    ("Gonçalves", "goncalves"),
    ("Schäfer", "schafer"),
    ("D'Angelo", "dangelo"),
    ("van der Berg", "vanderberg"),
    ("García-Márquez", "garcia-marquez"),
    ("Петрова", "petrova"),
    ("Παπαδόπουλος", "papadopoulos"),
    ("张", "zhang"),
    ("李", "li"),
    ("王", "wang"),
];

/// Display names of accounts that have no given name or surname (never set on the wire).
pub(crate) const NAMELESS: &[Name] = &[
    ("Conference Room", "conferenceroom"),
    ("Shared Mailbox", "sharedmailbox"),
    ("Front Desk", "frontdesk"),
    ("Lab Kiosk", "labkiosk"),
    ("Service Account", "svc"),
];

pub(crate) const JOB_TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Software Engineer",
    "Engineering Manager",
    "Product Manager",
    "Designer",
    "Data Scientist",
    "Account Executive",
    "Sales Manager",
    "Support Engineer",
    "Technical Writer",
    "Recruiter",
    "HR Business Partner",
    "Accountant",
    "Controller",
    "Legal Counsel",
    "Office Manager",
    "Chief Executive Officer",
    "Directeur Général",
    "Geschäftsführerin",
    "Ingénieure Réseau",
];

pub(crate) const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Product",
    "Design",
    "Sales",
    "Marketing",
    "Support",
    "Finance",
    "Human Resources",
    "Legal",
    "Operations",
    "Recherche & Développement",
    "Geschäftsführung",
];

pub(crate) const SUFFIXES: &[&str] = &[" (Contractor)", " (On Leave)", " - Temp"];

/// An office: where a user sits and which country code their phones have.
#[derive(Clone, Copy)]
pub(crate) struct Location {
    pub city: &'static str,
    pub state: Option<&'static str>,
    pub postal_code: &'static str,
    pub country: &'static str,
    /// ISO 3166-1 alpha-2.
    pub usage_location: &'static str,
    pub phone_prefix: &'static str,
    pub streets: &'static [&'static str],
}

pub(crate) const LOCATIONS: &[Location] = &[
    Location {
        city: "Seattle",
        state: Some("WA"),
        postal_code: "98101",
        country: "United States",
        usage_location: "US",
        phone_prefix: "+1 206 555",
        streets: &["Pine Street", "1st Avenue"],
    },
    Location {
        city: "San José",
        state: Some("CA"),
        postal_code: "95113",
        country: "United States",
        usage_location: "US",
        phone_prefix: "+1 408 555",
        streets: &["Santa Clara Street", "Almaden Boulevard"],
    },
    Location {
        city: "München",
        state: Some("Bayern"),
        postal_code: "80331",
        country: "Germany",
        usage_location: "DE",
        phone_prefix: "+49 89 5550",
        streets: &["Maximilianstraße", "Hauptstraße"],
    },
    Location {
        city: "Kraków",
        state: Some("Małopolskie"),
        postal_code: "30-001",
        country: "Poland",
        usage_location: "PL",
        phone_prefix: "+48 12 555",
        streets: &["ulica Floriańska", "ulica Grodzka"],
    },
    Location {
        city: "København",
        state: Some("Hovedstaden"),
        postal_code: "1050",
        country: "Denmark",
        usage_location: "DK",
        phone_prefix: "+45 33 55",
        streets: &["Strøget", "Nørregade"],
    },
    Location {
        city: "Reykjavík",
        state: None,
        postal_code: "101",
        country: "Iceland",
        usage_location: "IS",
        phone_prefix: "+354 555",
        streets: &["Laugavegur", "Skólavörðustígur"],
    },
    Location {
        city: "Paris",
        state: Some("Île-de-France"),
        postal_code: "75001",
        country: "France",
        usage_location: "FR",
        phone_prefix: "+33 1 55",
        streets: &["Rue de Rivoli", "Boulevard Haussmann"],
    },
    Location {
        city: "São Paulo",
        state: Some("SP"),
        postal_code: "01310-000",
        country: "Brazil",
        usage_location: "BR",
        phone_prefix: "+55 11 555",
        streets: &["Avenida Paulista", "Rua Augusta"],
    },
    Location {
        city: "Hà Nội",
        state: None,
        postal_code: "100000",
        country: "Vietnam",
        usage_location: "VN",
        phone_prefix: "+84 24 555",
        streets: &["Phố Hàng Bạc", "Đường Láng"],
    },
    Location {
        city: "北京",
        state: Some("北京市"),
        postal_code: "100000",
        country: "China",
        usage_location: "CN",
        phone_prefix: "+86 10 555",
        streets: &["长安街", "王府井大街"],
    },
    Location {
        city: "Dublin",
        state: Some("Leinster"),
        postal_code: "D02 X285",
        country: "Ireland",
        usage_location: "IE",
        phone_prefix: "+353 1 555",
        streets: &["Grafton Street", "O'Connell Street"],
    },
    Location {
        city: "Bengaluru",
        state: Some("Karnataka"),
        postal_code: "560001",
        country: "India",
        usage_location: "IN",
        phone_prefix: "+91 80 555",
        streets: &["MG Road", "Brigade Road"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_forms_are_lowercase_ascii_and_nonempty() {
        for (shown, ascii) in GIVEN_NAMES.iter().chain(SURNAMES).chain(NAMELESS) {
            assert!(!ascii.is_empty(), "{shown}");
            assert!(
                ascii
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{shown} -> {ascii}"
            );
        }
    }

    #[test]
    fn lists_include_non_ascii_names() {
        for list in [GIVEN_NAMES, SURNAMES] {
            let non_ascii = list.iter().filter(|(shown, _)| !shown.is_ascii()).count();
            assert!(non_ascii >= 10, "only {non_ascii} non-ASCII names");
        }
    }
}
