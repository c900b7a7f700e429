//! One table per string function: Append, Join, Left, Mid, NormalizeDiacritics, PCase,
//! Replace, Split, StripSpaces, ToLower, ToUpper, Word.

use serde_json::json;

use super::{Want, check, err, v};

#[test]
fn append() {
    check(&[
        (
            r#"Append([userPrincipalName], ".test")"#,
            json!({"userPrincipalName": "John.Doe@contoso.com"}),
            v(json!("John.Doe@contoso.com.test")),
        ),
        (
            r#"Append([userPrincipalName], ".test")"#,
            json!({}),
            v(json!(null)),
        ),
        (
            r#"Append([userPrincipalName], ".test")"#,
            json!({"userPrincipalName": null}),
            v(json!(null)),
        ),
        (
            "Append([givenName], [middleName])",
            json!({"givenName": "Zoë"}),
            v(json!("Zoë")),
        ),
        (
            r#"Append([givenName], "ñ")"#,
            json!({"givenName": "Zoë"}),
            v(json!("Zoëñ")),
        ),
        (
            r#"append([accountEnabled], "!")"#,
            json!({"accountEnabled": true}),
            v(json!("True!")),
        ),
        (
            r#"Append([businessPhones], "x")"#,
            json!({"businessPhones": ["1", "2"]}),
            err("expected one value, got a list of 2 at 7"),
        ),
    ]);
}

#[test]
fn join() {
    let john = json!({"givenName": "John", "surname": "Doe"});
    check(&[
        (
            r#"Join(" ", [givenName], [surname])"#,
            john.clone(),
            v(json!("John Doe")),
        ),
        (
            r#"Join(", ", "", [surname], [givenName])"#,
            john,
            v(json!("Doe, John")),
        ),
        (
            r#"Join(" ", [givenName], [surname])"#,
            json!({"givenName": "John"}),
            v(json!("John")),
        ),
        (
            r#"Join(" ", [givenName], [surname])"#,
            json!({}),
            v(json!(null)),
        ),
        (
            r#"Join(" ", [givenName], [surname])"#,
            json!({"givenName": ""}),
            v(json!("")),
        ),
        (
            r#"Join(" ", [givenName], [surname])"#,
            json!({"givenName": "Zoë", "surname": "Saldaña"}),
            v(json!("Zoë Saldaña")),
        ),
        (
            r#"Join(";", [businessPhones], [mobilePhone])"#,
            json!({"businessPhones": ["+1 555 0100", "+1 555 0101"], "mobilePhone": "+1 555 0102"}),
            v(json!("+1 555 0100;+1 555 0101;+1 555 0102")),
        ),
        (
            r#"Join("", 1000, [employeeId])"#,
            json!({"employeeId": "42"}),
            v(json!("100042")),
        ),
        (r#"Join([sep], "a", "b")"#, json!({}), v(json!("ab"))),
    ]);
}

#[test]
fn left() {
    check(&[
        (r#"Left("John Doe", 3)"#, json!({}), v(json!("Joh"))),
        (
            "Left([givenName], 0)",
            json!({"givenName": "John"}),
            v(json!("")),
        ),
        (
            "Left([givenName], -1)",
            json!({"givenName": "John"}),
            v(json!("John")),
        ),
        (
            "Left([givenName], 10)",
            json!({"givenName": "Zoë"}),
            v(json!("Zoë")),
        ),
        (
            "Left([givenName], 2)",
            json!({"givenName": "Ørjan"}),
            v(json!("Ør")),
        ),
        (r#"Left("😀abc", 1)"#, json!({}), v(json!("😀"))),
        ("Left([givenName], 3)", json!({}), v(json!(""))),
        (
            "Left([givenName], 9223372036854775807)",
            json!({"givenName": "Ann"}),
            v(json!("Ann")),
        ),
        (
            "Left([givenName], [n])",
            json!({"givenName": "Ann", "n": "2"}),
            v(json!("An")),
        ),
        (
            "Left([givenName], [n])",
            json!({"givenName": "Ann", "n": "two"}),
            err("expected a whole number, got \"two\" at 18"),
        ),
        (
            "Left([givenName], [n])",
            json!({"givenName": "Ann"}),
            err("expected a whole number, got null at 18"),
        ),
    ]);
}

#[test]
fn mid() {
    check(&[
        (
            "Mid([givenName], 1, 3)",
            json!({"givenName": "John"}),
            v(json!("Joh")),
        ),
        (r#"Mid("Zoë Saldaña", 9, 3)"#, json!({}), v(json!("aña"))),
        (r#"Mid("abc", 2, 100)"#, json!({}), v(json!("bc"))),
        (
            r#"Mid("abc", 1, 9223372036854775807)"#,
            json!({}),
            v(json!("abc")),
        ),
        (
            r#"Mid("abc", 9223372036854775807, 1)"#,
            json!({}),
            v(json!("")),
        ),
        (r#"Mid("abc", 10, 2)"#, json!({}), v(json!(""))),
        ("Mid([givenName], 1, 3)", json!({}), v(json!(""))),
        (
            r#"Mid("abc", [start], 1)"#,
            json!({"start": "0"}),
            err("start of Mid must be 1 or more, got 0 at 11"),
        ),
        (
            r#"Mid("abc", 1, [n])"#,
            json!({"n": -2}),
            err("length of Mid must not be negative, got -2 at 14"),
        ),
    ]);
}

#[test]
fn normalize_diacritics() {
    check(&[
        (
            "NormalizeDiacritics([givenName])",
            json!({"givenName": "Zoë"}),
            v(json!("Zoe")),
        ),
        (
            "NormalizeDiacritics([city])",
            json!({"city": "Ærøskøbing"}),
            v(json!("AEroeskoebing")),
        ),
        (
            "NormalizeDiacritics([city])",
            json!({"city": "Łódź"}),
            v(json!("Lodz")),
        ),
        (
            "NormalizeDiacritics([street])",
            json!({"street": "Großstraße"}),
            v(json!("Grossstrasse")),
        ),
        (
            "NormalizeDiacritics([surname])",
            json!({"surname": "Nguyễn Đặng"}),
            v(json!("Nguyen Dang")),
        ),
        (
            "NormalizeDiacritics([s])",
            json!({"s": "a\u{304}\u{301}Ā\u{301}"}),
            v(json!("aA")),
        ),
        (
            "NormalizeDiacritics([s])",
            json!({"s": "Дмитрий 李"}),
            v(json!("Дмитрий 李")),
        ),
        (
            "NormalizeDiacritics([s])",
            json!({"s": "Çağrı Şahin"}),
            v(json!("Cagri Sahin")),
        ),
        (
            "NormalizeDiacritics([givenName])",
            json!({}),
            v(json!(null)),
        ),
    ]);
}

#[test]
fn pcase() {
    check(&[
        (
            "PCase([firstName])",
            json!({"firstName": "PABLO GONSALVES (SECOND)"}),
            v(json!("Pablo Gonsalves (Second)")),
        ),
        (
            r#"PCase([lastName], " '-")"#,
            json!({"lastName": "PINTO-DE'SILVA"}),
            v(json!("Pinto-De'Silva")),
        ),
        (
            r#"PCase(Join(" ", [firstName], [lastName]))"#,
            json!({"firstName": "GREGORY", "lastName": "JAMES"}),
            v(json!("Gregory James")),
        ),
        (
            "PCase([lastName])",
            json!({"lastName": "o'neil-smith"}),
            v(json!("O'neil-Smith")),
        ),
        (
            "PCase([name])",
            json!({"name": "éLODIE ÇELIK"}),
            v(json!("Élodie Çelik")),
        ),
        (
            r#"PCase([name], "")"#,
            json!({"name": "jean paul"}),
            v(json!("Jean paul")),
        ),
        ("PCase([name])", json!({}), v(json!(null))),
    ]);
}

#[test]
fn replace() {
    check(&[
        (
            r#"Replace([BusinessTitle], "Product Developer", , , "Software Engineer", , )"#,
            json!({"BusinessTitle": "Product Developer"}),
            v(json!("Software Engineer")),
        ),
        (
            r#"Replace([UserID], "<username>", , , , , "<username>@contoso.com")"#,
            json!({"UserID": "jsmith"}),
            v(json!("jsmith@contoso.com")),
        ),
        (
            r#"Replace([mail], "@contoso.com", , , "", , )"#,
            json!({"mail": "john.doe@contoso.com"}),
            v(json!("john.doe")),
        ),
        (
            r#"Replace([mail], "@CONTOSO.COM", , , "", , )"#,
            json!({"mail": "john.doe@contoso.com"}),
            v(json!("john.doe@contoso.com")),
        ),
        (
            r#"Replace("a-b-c", "-", , , "_", , )"#,
            json!({}),
            v(json!("a_b_c")),
        ),
        (
            r#"Replace([surname], "ö", , , "oe")"#,
            json!({"surname": "Jörg Möller"}),
            v(json!("Joerg Moeller")),
        ),
        (
            r#"Replace([mail], "@contoso.com", , , "", , )"#,
            json!({}),
            v(json!(null)),
        ),
        (
            r#"Replace([UserID], "<u>", , , , , [template])"#,
            json!({"UserID": "a"}),
            v(json!(null)),
        ),
        (
            r#"Replace("abc", [old], , , "x", , )"#,
            json!({"old": ""}),
            v(json!("abc")),
        ),
        (
            r#"Replace("abc", "b", , , [new], , )"#,
            json!({}),
            v(json!("ac")),
        ),
    ]);
}

/// `regexPattern` + `replacementValue`: every match replaced, .NET substitutions expanded.
#[test]
fn replace_regex_pattern() {
    check(&[
        // Entra's examples.
        (
            r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", , "${phoneNumber}", , )"#,
            json!({"telephoneNumber": "+91 9998887777"}),
            v(json!("9998887777")),
        ),
        (
            r#"Replace([mobile], , "[()\\s-]+", , "", , )"#,
            json!({"mobile": "+1 (999) 888-7777"}),
            v(json!("+19998887777")),
        ),
        (
            r#"Replace([mailNickname], , "[a-zA-Z_]*", , "", , )"#,
            json!({"mailNickname": "john_doe72"}),
            v(json!("72")),
        ),
        // No match: the source as it is; null source: null; null replacement: "".
        (
            r##"Replace([x], , "\\d", , "#", , )"##,
            json!({"x": "abc"}),
            v(json!("abc")),
        ),
        (
            r##"Replace([x], , "\\d", , "#", , )"##,
            json!({}),
            v(json!(null)),
        ),
        (
            r#"Replace([x], , "\\d", , [r], , )"#,
            json!({"x": "a1b2"}),
            v(json!("ab")),
        ),
        // Case-sensitive unless the pattern says otherwise; Unicode \d and \w, as in .NET.
        (
            r#"Replace([x], , "abc", , "-", , )"#,
            json!({"x": "ABC abc"}),
            v(json!("ABC -")),
        ),
        (
            r#"Replace([x], , "(?i)abc", , "-", , )"#,
            json!({"x": "ABC abc"}),
            v(json!("- -")),
        ),
        (
            r#"Replace([x], , "\\w+", , "<$&>", , )"#,
            json!({"x": "Jörg ٣٤"}),
            v(json!("<Jörg> <٣٤>")),
        ),
        // .NET substitutions: numbered groups count unnamed ones first, then named ones.
        (
            r#"Replace([x], , "(?<last>\\w+), (\\w+)", , "$1 $2", , )"#,
            json!({"x": "Doe, John"}),
            v(json!("John Doe")),
        ),
        (
            r#"Replace([x], , "(?<last>\\w+), (?<first>\\w+)", , "${first} ${last}", , )"#,
            json!({"x": "Doe, John"}),
            v(json!("John Doe")),
        ),
        (
            r#"Replace([x], , "b", , "[$`|$&|$'|$_|$$|$+]", , )"#,
            json!({"x": "abc"}),
            v(json!("a[a|b|c|abc|$|b]c")),
        ),
        // A $ that names no group stays as written ($name needs braces in .NET).
        (
            r#"Replace([x], , "(?<n>b)", , "$n ${m} $9 $ ${n}", , )"#,
            json!({"x": "abc"}),
            v(json!("a$n ${m} $9 $ bc")),
        ),
        // $12 is group 12 when there is one, else not a group at all (.NET reads every digit).
        (
            r#"Replace([x], , "(b)", , "$12", , )"#,
            json!({"x": "abc"}),
            v(json!("a$12c")),
        ),
        (
            r#"Replace([x], , "(b)", , "${1}2", , )"#,
            json!({"x": "abc"}),
            v(json!("ab2c")),
        ),
        // A group that took no part in the match is empty.
        (
            r#"Replace([x], , "a(z)?", , "[$1]", , )"#,
            json!({"x": "ab"}),
            v(json!("[]b")),
        ),
    ]);
}

/// `regexPattern` + `regexGroupName` + `replacementValue`: the group's text in every match.
#[test]
fn replace_regex_group() {
    check(&[
        // Entra's examples.
        (
            r#"Replace([AddressLineData], ,"(?<streetNumber>^\\d*)","streetNumber", "888", , )"#,
            json!({"AddressLineData": "545 Tremont Street"}),
            v(json!("888 Tremont Street")),
        ),
        (
            r#"Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )"#,
            json!({"userPrincipalName": "jsmith@contoso.com"}),
            v(json!("jsmith")),
        ),
        // Only the group changes, in every match; the value is taken as it is (no $...).
        (
            r##"Replace([x], , "(?<d>\\d+)-", "d", "#$1", , )"##,
            json!({"x": "12-34-56"}),
            v(json!("#$1-#$1-56")),
        ),
        // A .NET group number works as a group name.
        (
            r#"Replace([x], , "(\\w+)@(?<dom>\\w+)", "1", "x", , )"#,
            json!({"x": "ann@a bob@b"}),
            v(json!("x@a x@b")),
        ),
        (
            r#"Replace([x], , "(\\w+)@(?<dom>\\w+)", "2", "x", , )"#,
            json!({"x": "ann@a bob@b"}),
            v(json!("ann@x bob@x")),
        ),
        // Matches where the group took no part are left alone.
        (
            r#"Replace([x], , "a(?<g>z)?", "g", "Z", , )"#,
            json!({"x": "ab az"}),
            v(json!("ab aZ")),
        ),
        (
            r#"Replace([x], , "(?<g>\\d)", "g", "", , )"#,
            json!({"x": "none"}),
            v(json!("none")),
        ),
        (
            r#"Replace([x], , "(?<g>\\d)", "g", "", , )"#,
            json!({}),
            v(json!(null)),
        ),
    ]);
}

/// `regexPattern` + `regexGroupName` + `replacementAttributeName`: the source when it has a
/// value, else the group's text in the other attribute.
#[test]
fn replace_regex_replacement_attribute() {
    let expr = r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", "phoneNumber" , , [mobile], )"#;
    check(&[
        // Entra's example: an empty source takes the number from mobile.
        (
            expr,
            json!({"telephoneNumber": "", "mobile": "+91 8887779999"}),
            v(json!("8887779999")),
        ),
        (
            expr,
            json!({"mobile": "+91 8887779999"}),
            v(json!("8887779999")),
        ),
        // A source with a value is returned as it is, pattern or not.
        (
            expr,
            json!({"telephoneNumber": "n/a", "mobile": "+91 8887779999"}),
            v(json!("n/a")),
        ),
        // Nothing to take: null.
        (expr, json!({"mobile": "8887779999"}), v(json!(null))),
        (expr, json!({}), v(json!(null))),
        // The first match is taken; the attribute may be any expression.
        (
            r#"Replace([a], , "(?<n>\\d+)", "n", , Join(" ", [b], [c]), )"#,
            json!({"b": "x12", "c": "34"}),
            v(json!("12")),
        ),
        // replacementAttributeName is evaluated only when the source has no value.
        (
            r#"Replace([a], , "(?<n>.)", "n", , IgnoreFlowIfNullOrEmpty([b]), )"#,
            json!({"a": "kept"}),
            v(json!("kept")),
        ),
        (
            r#"Replace([a], , "(?<n>.)", "n", , IgnoreFlowIfNullOrEmpty([b]), )"#,
            json!({}),
            Want::Ignore,
        ),
    ]);
}

/// What a regular-expression replacement builds is bounded like every other result.
#[test]
fn replace_regex_results_are_bounded() {
    let big = "a".repeat(40_000);
    check(&[
        (
            r#"Replace([x], , "a", , "bb", , )"#,
            json!({ "x": big }),
            err("result longer than 65536 bytes at 0"),
        ),
        (
            r#"Replace([x], , "(?<g>a)", "g", "bb", , )"#,
            json!({ "x": big }),
            err("result longer than 65536 bytes at 0"),
        ),
        (
            r#"Replace([x], , "a", , "$_", , )"#,
            json!({"x": "a".repeat(300)}),
            err("result longer than 65536 bytes at 0"),
        ),
        (
            r#"Replace([x], , "a", , "", , )"#,
            json!({ "x": big }),
            v(json!("")),
        ),
    ]);
}

#[test]
fn split() {
    check(&[
        (
            r#"Split([extensionAttribute5], ",")"#,
            json!({"extensionAttribute5": "PermissionSetOne,PermissionSetTwo"}),
            v(json!(["PermissionSetOne", "PermissionSetTwo"])),
        ),
        (
            r#"Split([extensionAttribute5], ",")"#,
            json!({"extensionAttribute5": "PermissionSetOne, PermissionSetTwo"}),
            v(json!(["PermissionSetOne", " PermissionSetTwo"])),
        ),
        (r#"Split([x], ",")"#, json!({}), v(json!(null))),
        (r#"Split([x], ",")"#, json!({"x": ""}), v(json!(null))),
        (r#"Split([x], ",")"#, json!({"x": "abc"}), v(json!(["abc"]))),
        (r#"Split("a::b", "::")"#, json!({}), v(json!(["a", "b"]))),
        (
            r#"Split("Zoë;Åsa;", ";")"#,
            json!({}),
            v(json!(["Zoë", "Åsa", ""])),
        ),
        ("Split([x], [d])", json!({"x": "a,b"}), v(json!(["a,b"]))),
    ]);
}

#[test]
fn strip_spaces() {
    check(&[
        (
            "StripSpaces([displayName])",
            json!({"displayName": " John  Doe "}),
            v(json!("JohnDoe")),
        ),
        (
            "StripSpaces([displayName])",
            json!({"displayName": "Zoë Saldaña"}),
            v(json!("ZoëSaldaña")),
        ),
        (
            "StripSpaces([displayName])",
            json!({"displayName": "a\tb\u{a0}c"}),
            v(json!("a\tb\u{a0}c")),
        ),
        ("StripSpaces([displayName])", json!({}), v(json!(null))),
        (
            "StripSpaces([displayName])",
            json!({"displayName": "   "}),
            v(json!("")),
        ),
    ]);
}

#[test]
fn to_lower() {
    check(&[
        (
            "ToLower([userPrincipalName])",
            json!({"userPrincipalName": "John.Smith@Contoso.com"}),
            v(json!("john.smith@contoso.com")),
        ),
        (
            "ToLower([name])",
            json!({"name": "ÉLODIE ÇELIK"}),
            v(json!("élodie çelik")),
        ),
        (
            r#"ToLower("ISTANBUL", "tr-TR")"#,
            json!({}),
            v(json!("ıstanbul")),
        ),
        (
            r#"ToLower("ISTANBUL", "en-US")"#,
            json!({}),
            v(json!("istanbul")),
        ),
        (
            r#"ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".", [PreferredFirstName], [PreferredLastName]))), "contoso.com"))"#,
            json!({"PreferredFirstName": "Zoë", "PreferredLastName": "Van Dijk"}),
            v(json!("zoe.vandijk@contoso.com")),
        ),
        ("ToLower([name])", json!({}), v(json!(null))),
    ]);
}

#[test]
fn to_upper() {
    check(&[
        (
            "ToUpper([givenName])",
            json!({"givenName": "Zoë"}),
            v(json!("ZOË")),
        ),
        (
            "ToUpper([street])",
            json!({"street": "Straße"}),
            v(json!("STRAßE")),
        ),
        (
            r#"ToUpper("istanbul", "tr")"#,
            json!({}),
            v(json!("İSTANBUL")),
        ),
        (
            r#"ToUpper([x], "en-US")"#,
            json!({"x": "abc"}),
            v(json!("ABC")),
        ),
        ("ToUpper([x])", json!({}), v(json!(null))),
    ]);
}

#[test]
fn word() {
    check(&[
        (
            r#"Word("The quick brown fox", 3, " ")"#,
            json!({}),
            v(json!("brown")),
        ),
        (
            r#"Word("This,string!has&many separators", 3, ",!&#")"#,
            json!({}),
            v(json!("has")),
        ),
        (r#"Word("a b", 0, " ")"#, json!({}), v(json!(""))),
        (r#"Word("a b", 3, " ")"#, json!({}), v(json!(""))),
        (r#"Word([x], 1, " ")"#, json!({}), v(json!(""))),
        (r#"Word("a,,b", 2, ",")"#, json!({}), v(json!("b"))),
        (
            r#"Word([displayName], 2, " ")"#,
            json!({"displayName": "Zoë Saldaña"}),
            v(json!("Saldaña")),
        ),
        (r#"Word("abc", 1, "")"#, json!({}), v(json!("abc"))),
        (
            r#"Word("a b", [n], " ")"#,
            json!({"n": true}),
            err("expected a whole number, got a boolean at 12"),
        ),
    ]);
}
