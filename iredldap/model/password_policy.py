"""Password rules: length from the domain (or the global settings), and the
character classes iRedAdmin asks for.  Errors use iRedAdmin's PW_* codes,
joined with commas when several rules fail."""

from __future__ import annotations

from dataclasses import dataclass

from iredldap.errors import InvalidInput

SPECIAL_CHARACTERS = "#$%&*+-,.:;!=<>'\"?@[]/(){}_\\`~^|"


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    max_length: int = 0          # 0: no upper limit
    need_letter: bool = True
    need_uppercase: bool = True
    need_digit: bool = True
    need_special: bool = True

    def check(self, password: str, *, param: str = "password") -> None:
        problems = []
        if any(ord(c) > 127 for c in password):
            problems.append("PW_NON_ASCII")
        if len(password) < self.min_length:
            problems.append("PW_SHORTER_THAN_MIN_LENGTH")
        if self.max_length and len(password) > self.max_length:
            problems.append("PW_GREATER_THAN_MAX_LENGTH")
        if self.need_letter and not any(c.isascii() and c.isalpha() for c in password):
            problems.append("PW_NO_LETTER")
        if self.need_uppercase and not any(c.isascii() and c.isupper() for c in password):
            problems.append("PW_NO_UPPERCASE")
        if self.need_digit and not any(c.isdigit() for c in password):
            problems.append("PW_NO_DIGIT_NUMBER")
        if self.need_special and not any(c in SPECIAL_CHARACTERS for c in password):
            problems.append("PW_NO_SPECIAL_CHAR")
        if problems:
            limits = f"{self.min_length}" + (f"-{self.max_length}" if self.max_length else "+")
            raise InvalidInput(f"{param}: the password does not meet the policy ({limits} characters; "
                               f"letters, upper case, digits and special characters as required)",
                               code=",".join(problems), param=param)
