"""iredldap: an LDAP-native REST API for iRedMail-style mail servers."""

__version__ = "0.1.0"
