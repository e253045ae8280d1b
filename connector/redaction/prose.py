"""Prose rules: secrets that only the words around them give away, in the seven handoff languages.

A credential word ("password", "Kennwort", "mot de passe", "PIN", "Türcode", "herstelcode"...),
then a connector (":", "=", "->", "is", "lautet", "es", "est", "é", "è", "set to", "changed
to", "geändert auf", "cambiata in", "(...)"), then a value of the shape its kind has. Up to
eight filler words may stand between the word and the connector ("pw per IT Glue: X", "Kennwort
für Frau Berger zurückgesetzt, neues lautet X"); such a value is not claimed, so the keep pass
may still shield it. Then the forms technicians paste: user/secret pairs, `net use`, `psexec`,
`cmdkey`, `ConvertTo-SecureString`, `curl -u`, connection strings, BitLocker keys (with their
checksum) and card numbers (with Luhn).

The patterns lean towards redacting: a lost word in a handoff costs little, a password in a
model prompt costs a lot. Keywords stay ("temp pw is [redacted: password]"); only values go.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from connector.redaction.engine import Finding, Rule, RuleSet, Scan

# --- value shapes ---------------------------------------------------------------------
# A value is one whitespace-free run (or a quoted string). Trailing punctuation goes
# with it: a swallowed full stop is harmless, a leaked last character is not.

# Never take a value that holds an earlier marker: keeps redact() idempotent.
_NOT_MARKER = r"(?![^\s'\"]*\[redacted)"
# Times and dates are not passwords ("last bad pwd 9:56am", "pw reset 1/7").
_NOT_WHEN = r"(?!\d{1,2}:\d{2}|\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?(?:[ap]m)?(?:[.,;)]*(?:\s|$)))"
# A quoted value may hold spaces ("new password is 'correct horse battery'").
_QUOTED = r"""(?:'[^'\n]{1,200}'|"[^"\n]{1,200}"|`[^`\n]{1,200}`|“[^”\n]{1,200}”|«[^»\n]{1,200}»)"""
# Words that say there is no value after "password:" ("pw: see IT Glue", "pw = ?").
_NOT_A_VALUE = (
    r"(?!(?:\?+|-+|n/?a|none|null|unknown|not|no|same|see|blank|empty|expired|expires|"
    r"reset|never|tbd|changed|required|missing|the|is|was|in|on|for|from|and|or|ok|yes|"
    r"wrong|incorrect|invalid|policy|change|manager|prompt|prompts|field|box|dialog|"
    r"siehe|keins?|leer|abgelaufen|im|in|ver|voir|dans|aucun|vide|zie|geen|leeg|ver|no|na|"
    r"nel|vedi|nessuna)"
    r"(?:[.,;:!?)]*(?:\s|$)))"
)
# Straight after "password:" / "PSK =": anything of three characters or more.
# A ";" ends it only where a connection string's next "Key=" follows.
_LOOSE = _NOT_A_VALUE + r"[^\s;]{3,}(?:;(?![ \t]*\w+=)\S*)?"


def _shaped(stop: str = "") -> str:
    """After "password is" / "la contraseña es" / "pw per IT Glue:": it must look like a
    password, letters plus a digit, an inner symbol (not an apostrophe: "doesn't") or camel
    case ("expired." does not). `stop`: characters that end the value."""
    chars = rf"[^\s{stop}]"
    return (
        _NOT_WHEN + rf"(?={chars}{{4,}})(?={chars}*[A-Za-z])"
        rf"(?-i:(?={chars}*\d|{chars}*[^\w\s'\u2019{stop}]{chars}|{chars}*[a-z]{chars}*[A-Z]))"
        rf"{chars}+"
    )


_SHAPED = _shaped()
_SHAPED_IN_BRACKETS = _shaped(")")
# Right after the keyword with no separator ("temp pw Brookhaven!0412"): stricter,
# six characters, letters and digits, and a symbol or mixed case.
_STRICT = (
    _NOT_WHEN + r"(?=\S{6,})(?=\S*\d)(?=\S*[A-Za-z])"
    r"(?-i:(?=\S*[^\w\s]|\S*[a-z]\S*[A-Z]|\S*[A-Z]\S*[a-z]))\S+"
)
# A long high-entropy token: 16+ characters with letters and digits.
_HIGH_ENTROPY = r"(?=[\w./+~-]*\d)(?=[\w./+~-]*[A-Za-z])[\w./+~-]{16,}={0,2}"
_GUID = r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?"
_TOKEN_VALUE = rf"(?:{_GUID}|{_HIGH_ENTROPY})"
# PINs, door and alarm codes: digits, perhaps ending in # or *.
_DIGITS_CODE = r"\d{3,10}[#*]?(?![\w-])"
# Recovery, backup and MFA codes: groups of letters and digits, digit runs, base32 seeds; a
# list of them goes whole ("backup codes: 8271-3390, 6612-0045").
_ONE_CODE = (
    r"(?-i:\d{3,4}(?:[ -]\d{3,4}){1,3}(?![\w-])"
    r"|(?=[A-Z0-9-]*\d)[A-Z0-9]{3,8}(?:-[A-Z0-9]{3,8}){1,7}(?![\w-])"
    r"|\d{6,10}(?![\w-])"
    r"|(?=[A-Z2-7]*[2-7])[A-Z2-7]{16,64}(?![\w-])"
    r"|(?=[A-Za-z]*\d)[A-Za-z0-9]{8,40}(?![\w-]))"
)
_CODES = rf"{_ONE_CODE}(?:[ \t]*[,;/][ \t]*{_ONE_CODE})*"

# --- connectors -------------------------------------------------------------------------

# Between a separator and its value: spaces, &nbsp; and inline HTML tags
# ("<b>Password:</b> X", "Password:&nbsp;X").
_GAP = r"(?:[ \t]|&nbsp;|</?[a-z][^<>\n]{0,60}>)*+"  # possessive: never gives a tag back
_SIGN = rf"[\"']?{_GAP}(?::|=|->|=>|→){_GAP}"
_NOW = (
    r"(?:now|still|literally|just|actually|jetzt|nun|noch|ahora|maintenant|toujours|"
    r"désormais|nu|nog|agora|ainda|ora|adesso|ancora)"
)
_CHANGED = (
    r"(?:set|reset|changed|updated|geändert|gesetzt|zurückgesetzt|cambiad[ao]|cambió|"
    r"restablecid[ao]|changée?|modifiée?|réinitialisée?|gewijzigd|veranderd|ingesteld|gereset|"
    r"alterad[ao]|mudad[ao]|redefinid[ao]|trocad[ao]|cambiat[ao]|impostat[ao]|reimpostat[ao])"
)
_TO = r"(?:to|auf|a|en|in|naar|op|para)"
_IS = r"(?:is|was|are|ist|war|lautet|es|era|est|était|é|è|it['\u2019]s|it[ \t]+is|c['\u2019]est)"
_BEEN = r"(?:has[ \t]+been|have[ \t]+been|was|is|wurde|werd|fue|foi|a[ \t]+été|è[ \t]+stata)"
# "is", "is now", "was reset to", "has been set to", "wurde geändert auf", "changed to", "to".
_SAYS = (
    rf"(?:{_IS}(?:[ \t]+{_NOW})?(?:[ \t]+{_CHANGED}[ \t]+{_TO})?"
    rf"|(?:{_BEEN}[ \t]+)?{_CHANGED}[ \t]+{_TO}|{_TO})"
)
_SAYS_DIRECT = rf"(?:{_SAYS}|-|\u2013)"  # "temp pw - X", right after the keyword only
# Up to eight words between a keyword and its connector; a word holds a letter, and no
# sign that would end the phrase.
_FILLER = r"(?:,?[ \t]+(?=[\w'\u2019/&.,-]*[^\W\d_])[^\W_][\w'\u2019/&.,-]{0,29}){1,8}?"


def _keyed(
    words: str,
    *,
    after_sign: str = f"{_QUOTED}|{_LOOSE}",
    after_says: str = f"{_QUOTED}|{_SHAPED}",
    bare: str | None = f"{_QUOTED}|{_STRICT}",
    fillers_claim: bool = False,
) -> re.Pattern[str]:
    """A "<keyword> <connector> <value>" pattern; the value groups are what is redacted.
    `fillers_claim`: the keyword is specific enough ("recovery code", "door code") to claim a
    value past filler words too."""
    past_fillers = "v5" if fillers_claim else "f1"
    no_sign = rf"| [ \t]+{_NOT_MARKER}(?P<v4>{bare})" if bare else ""  # temp pw X
    return re.compile(
        rf"""
        (?<![\w-]){words}(?![\w-])
        (?:
            {_SIGN}{_NOT_MARKER}(?P<v1>{after_sign})                        # pw: X, PSK = X
          | [ \t]+{_SAYS_DIRECT}[ \t]+{_NOT_MARKER}(?P<v2>{after_says})     # password is X
          | [ \t]*\([ \t]*{_NOT_MARKER}(?P<v3>{_SHAPED_IN_BRACKETS})[ \t]*\)  # password (X)
          | {_FILLER}(?:{_SIGN}|[ \t]+{_SAYS}[ \t]+|[ \t]*\([ \t]*){_NOT_MARKER}
            (?P<{past_fillers}>{after_says})                        # pw per IT Glue: X
          {no_sign}
        )
        """,
        re.IGNORECASE | re.VERBOSE,
    )


# --- credential words, seven languages ----------------------------------------------------

_PW_WORDS = r"""(?:
    passwords? | passwd | pwd | pw | pass | passphrase | pass[ \t-]?code | passcode
  | shared[ \t]+secret | community[ \t]+string | enable[ \t]+secret
  | kennwort | passwort | contraseña | contrasena | clave | mot[ \t]+de[ \t]+passe | mdp
  | wachtwoord | ww | senha | palavra-passe | parola[ \t]+d['\u2019]ordine
  | local[ \t]+admin(?:istrator)? | lokaler?[ \t]+admin | lokale[ \t]+beheerder
  | compte[ \t]+local[ \t]+admin | admin(?:istrador)?[ \t]+local | admin[ \t]+locale
)"""
_PW_STARTS: tuple[str, ...] = (
    *("pass", "pw", "shared", "community", "enable", "kennwort", "passwort", "contrase"),
    *("clave", "mot", "mdp", "wachtwoord", "ww", "senha", "palavra", "parola"),
    *("local", "lokale", "compte", "admin"),
)
_WIFI_WORDS = r"""(?:
    wpa[23]?(?:[- ]?(?:psk|personal))?(?:[ \t]+(?:raw[ \t]+)?(?:key|password|passphrase|pass|pw))?
  | psk | pre-?shared[ \t]+key
  | (?:wi-?fi|wlan|wireless|ssid)[ \t-]+(?:network[ \t]+)?(?:key|password|passwort|kennwort
      |passphrase|pass|pw|code|schlüssel|sleutel|wachtwoord|senha|clave|contraseña)
  | network[ \t]+(?:security[ \t]+)?key
  | (?:clave|contraseña|clé|mot[ \t]+de[ \t]+passe|senha|chave|chiave|password|wachtwoord)
      [ \t]+(?:(?:del?|du|do|da|della|dell['\u2019]|van[ \t]+de)[ \t]+)?(?:wi-?fi|wlan)
)"""
_WIFI_STARTS: tuple[str, ...] = (
    "wpa",
    "psk",
    "pre",
    "wi",
    "wlan",
    "wireless",
    "ssid",
    "network",
    "clave",
)
_WIFI_STARTS += ("contrase", "clé", "mot", "senha", "chave", "chiave", "password", "wachtwoord")
_PIN_WORDS = r"""(?:
    pin(?:[ \t-]?code)? | pincode | code[ \t]+pin
  | (?:door|gate|alarm|keypad|lockbox|key[ \t]?safe|safe|entry|access|building|garage)[ \t-]?code
  | code[ \t]+(?:to|for|of)[ \t]+the(?:[ \t]+[^\W\d_][\w'-]*){0,2}?[ \t]+
      (?:door|gate|lockbox|lock[ \t]box|key[ \t]?box|safe|keypad|alarm|cabinet|room)
  | tür-?code | zugangscode | alarm(?:anlage)?[ \t-]?code | torcode | tresorcode
  | código[ \t]+(?:(?:de[ \t]+(?:la[ \t]+)?|del|da|do)[ \t]*)?
      (?:puerta|alarma|acceso|porta|alarme|acesso)
  | code[ \t]+(?:d['\u2019]accès|de[ \t]+la[ \t]+porte|d['\u2019]alarme|de[ \t]+l['\u2019]alarme
      |porte|alarme)
  | toegangscode | deurcode | alarmcode | code[ \t]+van[ \t]+de[ \t]+[^\W\d_]+
  | codice[ \t]+(?:porta|allarme|d['\u2019]accesso|di[ \t]+accesso|cancello)
)"""
_PIN_STARTS: tuple[str, ...] = (
    "pin",
    "code",
    "door",
    "gate",
    "alarm",
    "keypad",
    "lockbox",
    "key",
    "safe",
)
_PIN_STARTS += ("entry", "access", "building", "garage", "tür", "zugangscode", "torcode")
_PIN_STARTS += ("tresorcode", "código", "toegangscode", "deurcode", "codice")
_RECOVERY_WORDS = r"""(?:
    (?:recovery|backup|bypass|one[ \t-]?time|verification|security|mfa|2fa|otp|sms|
       authenticator|auth)[ \t-]+codes? | totp(?:[ \t]+(?:secret|seed|key))? | otp
  | mfa[ \t]+(?:secret|seed)
  | wiederherstellungscodes? | backup-codes? | einmalcodes? | sicherheitscodes?
  | bestätigungscodes? | notfallcodes?
  | códigos?[ \t]+de[ \t]+(?:recuperación|recuperação|respaldo|seguridad|verificación
      |verificação|segurança|backup|un[ \t]+solo[ \t]+uso)
  | codes?[ \t]+de[ \t]+(?:récupération|secours|vérification|sécurité)
  | herstelcodes? | back-?upcodes? | verificatiecodes? | eenmalige[ \t]+code
  | codic[ei][ \t]+di[ \t]+(?:recupero|backup|verifica|sicurezza)
)"""
_RECOVERY_STARTS: tuple[str, ...] = (
    "recovery",
    "backup",
    "bypass",
    "one",
    "verification",
    "security",
    "mfa",
)
_RECOVERY_STARTS += ("2fa", "otp", "sms", "authenticator", "auth", "totp", "wiederherstellungs")
_RECOVERY_STARTS += ("einmal", "sicherheits", "bestätigungs", "notfall", "código", "code")
_RECOVERY_STARTS += ("herstel", "back-up", "verificatie", "eenmalige", "codic")
_API_WORDS = r"""(?:
    api[ \t_-]?(?:keys?|tokens?|secrets?) | access[ \t_-]?keys?(?:[ \t_-]?id)?
  | secret(?:[ \t_-]?(?:access[ \t_-]?)?key)? | client[ \t_-]?secret
  | app(?:lication)?[ \t_-]?secret
  | (?:auth|access|bearer|bot|refresh|personal[ \t]+access)[ \t_-]?tokens? | tokens?
  | licen[cs]e[ \t_-]?key | product[ \t_-]?key | private[ \t_-]?key | key
  | api-schlüssel | zugriffsschlüssel | schlüssel
  | clave[ \t]+(?:de[ \t]+(?:la[ \t]+)?)?api | clave[ \t]+secreta
  | secreto(?:[ \t]+(?:de[ \t]+)?cliente)?
  | clé[ \t]+(?:d['\u2019])?api | secret[ \t]+client | jeton(?:[ \t]+d['\u2019]accès)?
  | api-sleutel | toegangssleutel | sleutel
  | chave[ \t]+(?:da[ \t]+|de[ \t]+)?api | segredo(?:[ \t]+do[ \t]+cliente)?
  | chiave[ \t]+(?:dell['\u2019])?api | chiave | segreto(?:[ \t]+(?:del[ \t]+)?client)?
)"""
_API_STARTS: tuple[str, ...] = (
    "api",
    "access",
    "secret",
    "client",
    "app",
    "auth",
    "bearer",
    "bot",
    "refresh",
)
_API_STARTS += ("personal", "token", "licen", "product", "private", "key", "zugriffs")
_API_STARTS += ("schlüssel", "clave", "secreto", "clé", "jeton", "toegangs", "sleutel")
_API_STARTS += ("chave", "segredo", "chiave", "segreto")

# --- one pattern per rule -------------------------------------------------------------

# connection_string_password: the value of Password= / Pwd= in a connection string (up
# to the next ";", or to the end of the line when it is the last pair).
_CONN_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|\{[^}\n]*\})"""
CONNECTION_STRING_PASSWORD = re.compile(
    rf"""
    (?<![\w-])(?:password|pwd)[ \t]*=[ \t]*{_NOT_MARKER}
    (?P<v1>{_CONN_VALUE}|[^;\n]+?)(?=[ \t]*;)                        # Password=X;
  | (?:(?<=;)|(?<=;[ \t]))(?:password|pwd)[ \t]*=[ \t]*{_NOT_MARKER}
    (?P<v2>{_CONN_VALUE}|[^;\n]+)                                    # ...;Pwd=X<end>
    """,
    re.IGNORECASE | re.VERBOSE,
)

# bitlocker_key: a BitLocker recovery password, 8 groups of 6 digits joined by dashes or
# spaces; see _bitlocker_checksum.
BITLOCKER_KEY = re.compile(
    r"(?<!\d)(?<!\d[- ])\d{6}(?P<sep>[- ])\d{6}(?:(?P=sep)\d{6}){6}(?!\d|[- ]\d)"
)

# card_number: 13-19 digits, contiguous or in groups with one consistent space or dash
# (4-4-4-4, 4-6-5, ...), and only when the Luhn check passes (see _luhn_ok).
CARD_NUMBER = re.compile(
    r"(?<!\w)(?<!\w-)(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4,6}(?:(?P=sep)\d{3,5}){1,3})(?!\w|[ -]\d)"
)

# Windows and shell commands with a password in them.
_ARG = rf"(?:{_QUOTED}|(?!\*(?:\s|$))(?!/)\S+)"
COMMAND_PASSWORD = re.compile(
    rf"""
    /user:(?:"[^"\n]+"|\S+)[ \t]+                           # net use ... /user:D\u X, runas
      (?:(?:then[ \t]+)?(?:typed|entered|used)[ \t]+)?{_NOT_MARKER}(?P<v1>{_QUOTED}|(?!/){_SHAPED})
  | /pass(?:word)?:{_NOT_MARKER}(?P<v2>{_ARG})                # cmdkey /pass:X
  | -u[ \t]+\S+[ \t]+-p[ \t]+{_NOT_MARKER}(?P<v3>{_ARG})      # psexec -u U -p X
  | (?:-u|--user)[ \t]+["']?[^\s:"']+:{_NOT_MARKER}(?P<v4>[^\s"']+)   # curl -u U:X
  | convertto-securestring[ \t]+(?:-string[ \t]+)?(?P<v5>"[^"\n]+"|'[^'\n]+')
    """,
    re.IGNORECASE | re.VERBOSE,
)

# user / secret pairs after a word that announces credentials, well-known default accounts
# ("root/calvin"), "as DOMAIN\user with X" and "logged in with X".
_CREDS_WORDS = r"""(?:
    creds | credentials? | login | logon | log-in | user(?:name)? | benutzer(?:name)?
  | zugangsdaten | anmeldedaten | login-daten | zugang | credenciales | credencial | usuario
  | identifiants? | utilisateur | inloggegevens | gebruiker(?:snaam)? | credenciais | usuário
  | utilizador | credenziali | utente
)"""
_CREDS_STARTS: tuple[str, ...] = (
    "cred",
    "log",
    "user",
    "benutzer",
    "zugang",
    "anmelde",
    "usuario",
    "identifiant",
)
_CREDS_STARTS += ("utilisateur", "inlog", "gebruiker", "usuário", "utilizador", "utente")
_USER = r"(?!https?:)[^\s/:]{1,64}"
CREDENTIAL_PAIR = re.compile(
    rf"""
    (?<![\w-]){_CREDS_WORDS}(?![\w-])(?:{_FILLER})?[ \t]*:?[ \t]*{_USER}
    (?:[ \t]*/[ \t]*|:){_NOT_MARKER}(?P<v1>(?!/){_SHAPED})       # U / P, U:P
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Defaults the field knows by heart are still passwords ("iDRAC root/calvin").
_DEFAULTS = r"(?:calvin|admin|password|ubnt|raspberry|changeme|public|private|cisco|toor)"
DEFAULT_ACCOUNT = re.compile(
    rf"(?<![\w/\\.:-])(?:root|admin|administrator|ubnt|pi|sa)[ \t]*(?:/|:)[ \t]*{_NOT_MARKER}"
    rf"(?P<v1>(?!/)(?:{_SHAPED}|{_DEFAULTS}(?![\w/])))",
    re.IGNORECASE,
)
SIGN_IN_WITH = re.compile(
    rf"""
    (?<![\w-])as[ \t]+\S*[\\@]\S+[ \t]+(?:with|using)[ \t]+{_NOT_MARKER}(?P<v1>{_SHAPED})
  | (?<![\w-])(?:log(?:ged)?|sign(?:ed)?)[ \t-]?(?:in|on)[ \t]+with[ \t]+{_NOT_MARKER}
      (?P<f1>{_SHAPED})
    """,
    re.IGNORECASE | re.VERBOSE,
)

RECOVERY_CODE = _keyed(
    _RECOVERY_WORDS, after_sign=_CODES, after_says=_CODES, bare=_CODES, fillers_claim=True
)
PIN = _keyed(
    _PIN_WORDS,
    after_sign=_DIGITS_CODE,
    after_says=_DIGITS_CODE,
    bare=_DIGITS_CODE,
    fillers_claim=True,
)
WIFI_KEY = _keyed(_WIFI_WORDS)
# api_key: "Authorization: Bearer X", and long high-entropy tokens (or a GUID) after key,
# token and secret words, including identifiers that end in them (CF_API_TOKEN=X).
API_KEY = re.compile(
    rf"""
    (?:authorization[ \t]*[:=][ \t]*["']?(?:bearer|basic|token)|bearer)[ \t]+
      {_NOT_MARKER}(?P<v1>[\w./+~-]{{8,}}={{0,2}})                   # Authorization: Bearer X
  | (?<![A-Za-z0-9]){_API_WORDS}(?![A-Za-z0-9])
    (?:["']?{_GAP}[:=]{_GAP}|[ \t]+(?:{_SAYS}[ \t]+)?)["']?{_NOT_MARKER}
      (?P<v2>{_TOKEN_VALUE})                                        # api_key=X, token X
  | (?<![A-Za-z0-9]){_API_WORDS}(?![A-Za-z0-9]){_FILLER}(?:{_SIGN}|[ \t]+{_SAYS}[ \t]+)
      ["']?{_NOT_MARKER}(?P<f1>{_TOKEN_VALUE})                      # API key for X: Y
    """,
    re.IGNORECASE | re.VERBOSE,
)
PASSWORD = _keyed(_PW_WORDS)
# "key: X" said of anything ("Wi-Fi is ClinicGuest, key: X"), but not a registry key.
KEY_VALUE = re.compile(
    rf"(?<![\w-])(?:key|clé|clave|chave|chiave|sleutel|schlüssel){_SIGN}{_NOT_MARKER}"
    rf"(?!HK(?:LM|CU|EY|U)\b)(?P<f1>{_SHAPED})",
    re.IGNORECASE,
)


# --- rules ------------------------------------------------------------------------------


def _luhn_ok(match: re.Match[str]) -> bool:
    digits = [int(ch) for ch in match.group(0) if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _bitlocker_checksum(match: re.Match[str]) -> bool:
    """BitLocker checks its own recovery passwords so: every group is a multiple of 11 and
    below 720896 (11 x 65536), which no phone number or serial run passes by chance."""
    groups = [int(g) for g in re.split(r"[- ]", match.group(0))]
    return all(g % 11 == 0 and g < 720_896 for g in groups)


# In priority order: where two rules claim the same characters the earlier one names the
# kind, so a BitLocker key is not read as a card number and "Wi-Fi password: X" is a wifi_key.
# Every pattern starts with one of its rule's words; tests/unit/test_redaction.py checks each
# kind, so a keyword added to a pattern must be added here too.
RULES = RuleSet(
    (
        Rule("connection_string_password", ("password", "pwd"), CONNECTION_STRING_PASSWORD),
        Rule("bitlocker_key", ("0",), BITLOCKER_KEY, _bitlocker_checksum),
        Rule("card_number", ("0",), CARD_NUMBER, _luhn_ok),
        Rule("password", ("/user:", "/pass", "-u", "--user", "convertto-"), COMMAND_PASSWORD),
        Rule("recovery_code", _RECOVERY_STARTS, RECOVERY_CODE),
        Rule("pin", _PIN_STARTS, PIN),
        Rule("wifi_key", _WIFI_STARTS, WIFI_KEY),
        Rule("api_key", ("authorization", "bearer", *_API_STARTS), API_KEY),
        Rule("password", _PW_STARTS, PASSWORD),
        Rule("password", _CREDS_STARTS, CREDENTIAL_PAIR),
        Rule("password", ("root", "admin", "ubnt", "pi", "sa"), DEFAULT_ACCOUNT),
        Rule("password", ("as", "log", "sign"), SIGN_IN_WITH),
        Rule(
            "password",
            ("key", "clé", "clave", "chave", "chiave", "sleutel", "schlüssel"),
            KEY_VALUE,
        ),
    )
)


def find(scan: Scan, rank: int) -> Iterator[Finding]:
    return RULES.find(scan, rank)
