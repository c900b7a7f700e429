//! The Graph user properties a synthetic tenant models, by their wire names, and bit sets of them.
//!
//! A [`PropSet`] is how the change logic says which properties a change touched, how the tenant
//! remembers which ones were explicitly cleared (`null` on the wire rather than omitted), and how
//! the Graph simulator carries a `$select` inside its opaque state tokens.

use std::fmt;

/// One user property (`id` is not one: it is always returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prop {
    UserPrincipalName,
    DisplayName,
    GivenName,
    Surname,
    Mail,
    JobTitle,
    Department,
    EmployeeId,
    BusinessPhones,
    MobilePhone,
    FaxNumber,
    StreetAddress,
    City,
    State,
    PostalCode,
    Country,
    UsageLocation,
    AccountEnabled,
    /// The manager relationship (`manager@delta` on the wire); only returned when selected.
    Manager,
}

impl Prop {
    /// Every property, in the order Graph documents them.
    pub const ALL: [Prop; 19] = [
        Prop::UserPrincipalName,
        Prop::DisplayName,
        Prop::GivenName,
        Prop::Surname,
        Prop::Mail,
        Prop::JobTitle,
        Prop::Department,
        Prop::EmployeeId,
        Prop::BusinessPhones,
        Prop::MobilePhone,
        Prop::FaxNumber,
        Prop::StreetAddress,
        Prop::City,
        Prop::State,
        Prop::PostalCode,
        Prop::Country,
        Prop::UsageLocation,
        Prop::AccountEnabled,
        Prop::Manager,
    ];

    /// The property's Graph name, as used in `$select` and in JSON.
    pub fn wire_name(self) -> &'static str {
        match self {
            Prop::UserPrincipalName => "userPrincipalName",
            Prop::DisplayName => "displayName",
            Prop::GivenName => "givenName",
            Prop::Surname => "surname",
            Prop::Mail => "mail",
            Prop::JobTitle => "jobTitle",
            Prop::Department => "department",
            Prop::EmployeeId => "employeeId",
            Prop::BusinessPhones => "businessPhones",
            Prop::MobilePhone => "mobilePhone",
            Prop::FaxNumber => "faxNumber",
            Prop::StreetAddress => "streetAddress",
            Prop::City => "city",
            Prop::State => "state",
            Prop::PostalCode => "postalCode",
            Prop::Country => "country",
            Prop::UsageLocation => "usageLocation",
            Prop::AccountEnabled => "accountEnabled",
            Prop::Manager => "manager",
        }
    }

    /// Looks a property up by Graph name; case-insensitive like OData `$select`.
    pub fn from_wire_name(name: &str) -> Option<Prop> {
        Prop::ALL
            .into_iter()
            .find(|p| p.wire_name().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Prop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// A set of [`Prop`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PropSet(u32);

impl PropSet {
    pub const EMPTY: PropSet = PropSet(0);

    /// Every property, the manager relationship included.
    pub fn all() -> PropSet {
        Prop::ALL.into_iter().collect()
    }

    /// What Graph returns without `$select`: every property, relationships excluded.
    pub fn default_selection() -> PropSet {
        let mut set = PropSet::all();
        set.remove(Prop::Manager);
        set
    }

    pub fn insert(&mut self, prop: Prop) {
        self.0 |= prop.bit();
    }

    pub fn remove(&mut self, prop: Prop) {
        self.0 &= !prop.bit();
    }

    pub fn contains(self, prop: Prop) -> bool {
        self.0 & prop.bit() != 0
    }

    pub fn union(self, other: PropSet) -> PropSet {
        PropSet(self.0 | other.0)
    }

    pub fn intersects(self, other: PropSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Members in [`Prop::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Prop> {
        Prop::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// The raw bits, for compact encodings; [`PropSet::from_bits`] is the inverse.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Rebuilds a set from [`PropSet::bits`]; `None` when a bit names no property.
    pub fn from_bits(bits: u32) -> Option<PropSet> {
        let set = PropSet(bits);
        (set == PropSet(bits & PropSet::all().0)).then_some(set)
    }
}

impl FromIterator<Prop> for PropSet {
    fn from_iter<I: IntoIterator<Item = Prop>>(iter: I) -> Self {
        let mut set = PropSet::EMPTY;
        for prop in iter {
            set.insert(prop);
        }
        set
    }
}

impl fmt::Debug for PropSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Prop::wire_name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_case_insensitively() {
        for prop in Prop::ALL {
            assert_eq!(Prop::from_wire_name(prop.wire_name()), Some(prop));
            assert_eq!(
                Prop::from_wire_name(&prop.wire_name().to_uppercase()),
                Some(prop)
            );
        }
        for unknown in ["", "id", "skills", "displayname "] {
            assert_eq!(Prop::from_wire_name(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn set_operations() {
        let cases: &[(&[Prop], &[Prop], bool)] = &[
            (&[Prop::City], &[Prop::City, Prop::Mail], true),
            (&[Prop::City], &[Prop::Mail], false),
            (&[], &[Prop::Mail], false),
        ];
        for (a, b, intersects) in cases {
            let (a, b): (PropSet, PropSet) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            assert_eq!(a.intersects(b), *intersects, "{a:?} {b:?}");
            assert_eq!(
                a.union(b).len(),
                a.iter().chain(b.iter()).collect::<PropSet>().len()
            );
        }
        assert_eq!(PropSet::all().len(), Prop::ALL.len());
        assert!(!PropSet::default_selection().contains(Prop::Manager));
        assert_eq!(PropSet::default_selection().len(), Prop::ALL.len() - 1);
    }

    #[test]
    fn bits_round_trip_and_reject_unknown_bits() {
        let set: PropSet = [Prop::Surname, Prop::Manager].into_iter().collect();
        assert_eq!(PropSet::from_bits(set.bits()), Some(set));
        assert_eq!(PropSet::from_bits(1 << 31), None);
    }
}
