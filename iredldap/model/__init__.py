"""Account types, parameters, validators, passwords: no falcon, no LDAP, no SQL."""
