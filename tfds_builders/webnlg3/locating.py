"""Locating WebNLG 3.0 entities in their texts: DBpedia-style names to token spans.

WebNLG 3.0 gives each text the triples it states, with entities written as DBpedia
names (`Aaron_S._Daggett`, `Bionico_(dessert)`, `Fort_Worth,_Texas`, `"1932-03-15"`,
`1.5 (kilometres)`) but does not mark where they are mentioned. `locate_triples`
turns each entity into the surface forms texts write it with, finds them among the
text's tokens (`rin_keras.data.tokenizer.tokenize_with_offsets`) and returns token
spans `[start, end)`; a triple whose subject or object cannot be placed is dropped
with its reason.

Matching is token by token, so spans always fall on token boundaries. A mention
that covers part of a token (`Texas` in `Texas-based`, `1.5` in `1.5km`) is not
matched: the data marks whole tokens, and a span over `Texas-based` would teach
the model that the adjective is the entity. Tokens compare after folding:
accents removed (NFKD), case folded, dashes and quotes unified, and periods
removed from tokens without digits (`U.S.` = `US`, `S.` = `S`).

Forms come in tiers, most specific first:
- strong: the name and its regular rewrites: underscores to spaces, a disambiguation
  suffix dropped (`Bionico`), a comma qualifier kept or dropped (`Fort Worth, Texas`,
  `Fort Worth Texas`, `Fort Worth`), `English_language` as `English`, hyphens as
  spaces, dotted initials closed up (`A.F.C.` = `AFC`), `&`/`+` as `and`, quoted
  literals unquoted; dates as texts write them (`March 15, 1932`, `15th of March,
  1932`); numbers formatted (`1,500.0`, `1500`, `5.0` -> `5`) with or without their
  unit (`1.5 kilometres`, `1.5 km`). Commas, colons, quotes and hyphens between a
  form's words may be present or not (`1634: The Ram Rebellion`, `1634 The Ram ...`).
- inflected: a name with or without a plural ending (`Almonds`, `Americans` -> `American`; without it only where
  no word but a function word follows: `Philippine dish` is no mention of `Philippines`),
  and a name without a qualifier that is another entity of the triples
  (`President_of_the_United_States` with `United_States`: `President`).
- acronyms, matched with case (`US`, `U.S.`, `US Army`; `USA`, `America`, `UK`, `Britain`
  for the two countries texts abbreviate most).
- weak: a date's `March 1932` or bare year, a number of one or two digits: only where
  they occur exactly once in the text (a year not after a month or a day: `10th March 1983` holds no
  mention of 1983-10-03).
- learned: runs of a name's words (`Shepard`, `Felipe VI`, `Native Americans`) count only
  where they occur once, are not next to the name's neighbouring words (`Native` followed
  by `Americans`), and another text of the same entry (`other_texts`) writes the entity
  that way and no strong form of it: evidence that the entry's authors use the short form.
Acronyms, weak and learned forms never count inside another entity's strong mention.

A mention of a name runs across a period token only where the name has periods between its words (`Admin. Sci. Q`),
not across a sentence end (`Trenton. New Jersey`). A list of numbers (`"541, 458"`) is not its first item.

Among an entity's matches, one inside another entity's longer strong mention (`Acura` of `Acura TLX`) counts only
where the entity has no other; then the more specific (tier, then more words) wins; among equally
specific places, the subject and object pair that lies nearest, then the first. Subject
and object may not share a span (and overlap only where nothing else is possible).

Measured on 2026-12-06 (`python benchmarks/webnlg3_locating.py`):
- train: 94.8% of the 104,799 triple mentions (triple x text) located with full spans;
  dropped: object not found 4.1%, subject not found 1.1%, both 0.1%, same span 15.
  dev: 95.0% of 13,232.
- WebNLG* train (4,276 of its 5,019 texts are WebNLG 3.0 train texts): 89.8% of its 9,637
  triples reproduced by last word. Of the 987 others, 762 are WebNLG*'s taking the last word
  of the DBpedia name where the text writes the entity otherwise (`language` for
  `English_language` in "English is spoken", `Texas` for `Abilene,_Texas` in "Abilene",
  `States` for `President_of_the_United_States` in "the President"), 22 differ in relation
  name only, 1 has no WebNLG 3.0 triple, 202 (2.1%) are dropped here: 97.7% of the WebNLG*
  triples that name a text mention are reproduced. 69.9% of the located triples are WebNLG*
  triples: WebNLG* keeps fewer triples per text (24% of the located ones have no WebNLG*
  counterpart at all).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import unicodedata
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from absl import logging

from rin_keras.data.tokenizer import Token, tokenize_with_offsets
from tfds_builders.casrel import DataError

Span = tuple[int, int]
Triple = tuple[str, str, str]

SUBJECT_NOT_FOUND = "subject not found"
OBJECT_NOT_FOUND = "object not found"
NEITHER_FOUND = "subject and object not found"
SAME_SPAN = "same span"
DROP_REASONS = (SUBJECT_NOT_FOUND, OBJECT_NOT_FOUND, NEITHER_FOUND, SAME_SPAN)

_STRONG, _INFLECTED, _ACRONYM, _WEAK, _LEARNED = range(5)  # Tiers of a surface form (lower is more specific).

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MONTH_ABBREVIATIONS = {month[:3].lower(): number for number, month in enumerate(_MONTHS, 1)}
_UNITS = {
    "kilometres": ("kilometres", "kilometers", "kilometre", "kilometer", "km"),
    "metres": ("metres", "meters", "metre", "meter", "m"),
    "millimetres": ("millimetres", "millimeters", "mm"),
    "centimetres": ("centimetres", "centimeters", "cm"),
    "square kilometres": ("square kilometres", "square kilometers", "sq km", "km2", "km²", "square km"),
    "square metres": ("square metres", "square meters", "sq m", "m2", "m²"),
    "kilograms": ("kilograms", "kilogrammes", "kg", "kgs"),
    "tonnes": ("tonnes", "tons", "t"),
    "kelvins": ("kelvins", "kelvin", "K"),
    "days": ("days",),
    "minutes": ("minutes", "mins", "min"),
    "litres": ("litres", "liters", "l"),
    "inches": ("inches", "in"),
    "kilometrePerSeconds": ("kilometres per second", "kilometers per second", "km/s", "km per second"),
    "inhabitants per square kilometre": ("inhabitants per square kilometre", "inhabitants per square kilometer",
                                         "inhabitants per km2", "inhabitants per km²", "people per square kilometre",
                                         "people per square kilometer", "per square kilometre",
                                         "per square kilometer"),
    "gramPerCubicCentimetres": ("grams per cubic centimetre", "grams per cubic centimeter", "g/cm3", "g/cm³"),
    "kilogramPerCubicMetres": ("kilograms per cubic metre", "kilograms per cubic meter", "kg/m3", "kg/m³"),
}
_NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2}|[A-Za-z]{3})-([0-9]{2})")
_PLAIN = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
                        "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "ø": "o", "Ø": "O",
                        "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ı": "i", "ł": "l", "Ł": "L",
                        "đ": "d", "Đ": "D", "ð": "d", "þ": "th"})
_INITIALS = re.compile(r"\b(?:[A-Z]\.){2,}")  # `A.F.C.`, also written `AFC`.
_CLITICS = frozenset({"'s", "'re", "'ve", "'ll", "'d", "'m"})
_SKIPPED = frozenset({",", ":", "'", '"', "-"})  # Punctuation a mention may hold or lack: `Fort Worth(,) Texas`.
# Inside the mention of a name with periods between its words a period token is skipped too: a word's period that
# the tokeniser read as a sentence end (`Admin. Sci. Q.` written `Admin. Sci. Q` gives `Sci`, `.`, `Q`). Other
# names do not run across a sentence end (`Trenton. New Jersey` is no `Trenton, New Jersey`).
_SKIPPED_INSIDE = _SKIPPED | {"."}
_YEAR = re.compile(r"[0-9]{4}")
_DAY = re.compile(r"[0-9]{1,2}(?:st|nd|rd|th)?")
_FUNCTION_WORDS = frozenset(
    "and or but nor is are was were be been being has have had who whom whose which that in of from by with as to "
    "for at on into since until after before while".split())
_GENERIC_SUFFIXES = (" language", " music", " cuisine")  # `English_language` is written `English`.
_ALIASES = {"United States": ("USA", "U.S.A.", "America"), "United Kingdom": ("U.K.", "UK", "Britain")}
_GENERIC_WORDS = frozenset(
    "university college school institute airport club team church river state county city of the and at in for "
    "on national international football association company hotel building".split())


@dataclasses.dataclass
class LocatedText:
    """A text's tokens and the triples placed in it.

    Attributes:
        tokens: the text's tokens (`tokenize_with_offsets`).
        triples: `(subject span, relation, object span)`, spans `[start, end)` token indices.
        dropped: `(triple, reason)` for each triple that could not be placed, reason one of `DROP_REASONS`.
    """

    tokens: list[Token]
    triples: list[tuple[Span, str, Span]]
    dropped: list[tuple[Triple, str]]


@dataclasses.dataclass
class Entry:
    """One WebNLG entry: a triple set and the texts that state it.

    Attributes:
        category: the DBpedia category (`Airport`, ...).
        eid: the entry's id within its file (`Id1`, ...).
        size: the number of triples.
        triples: the modified triples, `(subject, relation, object)` with whitespace stripped.
        lexes: `(lid, text)` for each text.
    """

    category: str
    eid: str
    size: int
    triples: list[Triple]
    lexes: list[tuple[str, str]]


def read_entries(path) -> list[Entry]:
    """Returns the entries of one WebNLG 3.0 XML file (`en/train/1triples/Airport.xml`, ...): their English texts
    (a `<lex>` of another `lang` is left out, counted in a warning).

    Raises:
        casrel.DataError: the file is not WebNLG 3.0 XML, naming it (and the entry).
    """
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as e:
        raise DataError(f"{path}: not well-formed XML ({e}). Copy it again, byte for byte, from the release.") from e
    entries, other_languages = [], 0
    for element in root.iter("entry"):
        where = f"{path}: entry {element.get('eid')}"
        size = element.get("size") or ""
        if not element.get("category") or not size.isdigit():
            raise DataError(f"{where} has no category or no size: not WebNLG 3.0's <entry category=... size=...>.")
        triples = []
        for mtriple in element.iter("mtriple"):
            parts = tuple(part.strip() for part in (mtriple.text or "").split(" | "))
            if len(parts) != 3 or not all(parts):
                raise DataError(f"{where}: the triple {mtriple.text!r} is not written `subject | relation | object`.")
            triples.append(parts)
        lexes = []
        for lex in element.iter("lex"):
            if lex.get("lang", "en") != "en":
                other_languages += 1
                continue
            if len(lex):
                raise DataError(f"{where}, text {lex.get('lid')} holds XML elements (<{lex[0].tag}>), where WebNLG "
                                "3.0 has plain text: not the 3.0 release's layout.")
            lexes.append((lex.get("lid"), (lex.text or "").strip()))
        entries.append(Entry(element.get("category"), element.get("eid"), int(size), triples, lexes))
    if not entries:
        raise DataError(f"{path} holds no <entry>: not a WebNLG 3.0 XML file.")
    if other_languages:
        logging.warning("%s: %d texts in another language than English left out.", path, other_languages)
    return entries


def fold(text: str, casefold: bool = True) -> str:
    """Returns `text` without accents (`ø` and `ı` too), with dashes and curly quotes made plain, case folded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_PLAIN))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return plain.casefold() if casefold else plain


def _token_keys(token: str, casefold: bool = True) -> list[str]:
    """The comparison keys of one token: folded; periods end a number's token and split a word's
    (`1.` = `1`, `U.S.` = `U S`, `S.` = `S`)."""
    folded = fold(token, casefold)
    if folded in ("``", "''"):
        return ['"']
    if folded not in _CLITICS and len(folded) > 1:
        folded = folded.strip("'") or folded  # `'1634` in `'1634: The Bavarian Crisis'`.
    if any(char.isdigit() for char in folded):
        return [folded.rstrip(".") or "."]
    return [part for part in folded.split(".") if part] or ["."]


def _keys(text: str, casefold: bool = True) -> tuple[str, ...]:
    """The comparison keys of a surface form, without the punctuation that matching skips (but a leading minus)."""
    keys = [key for token in tokenize_with_offsets(text) for key in _token_keys(token.text, casefold)]
    return tuple(key for index, key in enumerate(keys)
                 if (key not in _SKIPPED or (index == 0 and key == "-" and len(keys) > 1)) and key != ".")


@dataclasses.dataclass
class _TextKeys:
    """A text's comparison keys (case folded and not) and, for each, the index of its token."""

    folded: list[str]
    cased: list[str]
    token: list[int]

    @classmethod
    def of(cls, tokens: Sequence[Token]) -> _TextKeys:
        keys = cls([], [], [])
        for index, token in enumerate(tokens):
            folded, cased = _token_keys(token.text), _token_keys(token.text, casefold=False)
            if len(folded) != len(cased):  # Case folding changed the split: the token matches case folded only.
                cased = folded
            keys.folded += folded
            keys.cased += cased
            keys.token += [index] * len(folded)
        return keys

    def spans(self, form: _Form) -> list[Span]:
        """Token spans where `form` occurs: whole tokens, skipping punctuation between its keys."""
        text, keys, token = (self.cased if form.cased else self.folded), form.keys, self.token
        spans = []
        for start in range(len(text)):
            if text[start] != keys[0] or (start and token[start - 1] == token[start]):
                continue
            position, matched = start, 0
            while matched < len(keys) and position < len(text):
                if text[position] == keys[matched]:
                    matched += 1
                elif not (matched and text[position] in (_SKIPPED_INSIDE if form.dotted else _SKIPPED)):
                    break
                position += 1
            if matched == len(keys) and (position == len(text) or token[position] != token[position - 1]):
                spans.append((token[start], token[position - 1] + 1))
        return spans


def _number_forms(number: str) -> list[str]:
    """`1500.0` -> `1500.0`, `1500`, `1,500.0`, `1,500`: the ways texts write one number."""
    plain = number.replace(",", "")
    whole, _, fraction = plain.partition(".")
    sign, digits = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
    short_fraction = fraction.rstrip("0")  # `5.0` -> `5`, `12.50` -> `12.5`.
    forms = [number]
    for integer in (whole, sign + f"{int(digits):,}"):
        forms += [f"{integer}.{fraction}" if fraction else integer,
                  f"{integer}.{short_fraction}" if short_fraction else integer]
    return list(dict.fromkeys(forms))


def _date_forms(year: str, month: int, day: int) -> tuple[list[str], list[str]]:
    """Strong (full date) and weak (month and year, year) forms of a date."""
    name = _MONTHS[month - 1]
    short = name[:3]
    ordinal = f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"
    strong = [f"{year}-{month:02d}-{day:02d}", f"{day:02d}-{month:02d}-{year}", f"{day:02d}/{month:02d}/{year}", f"{month:02d}/{day:02d}/{year}",
              f"{day}/{month}/{year}", f"{month}/{day}/{year}"]
    for month_name in (name, short, short + "."):
        for day_text in (str(day), ordinal, f"{day:02d}"):
            strong += [f"{month_name} {day_text}, {year}", f"{month_name} {day_text} {year}",
                       f"{day_text} {month_name} {year}", f"{day_text} {month_name}, {year}",
                       f"{day_text} of {month_name} {year}", f"{day_text} of {month_name}, {year}",
                       f"{month_name} the {day_text}, {year}", f"{month_name} the {day_text} {year}",
                       f"the {day_text} of {month_name}, {year}", f"the {day_text} of {month_name} {year}"]
    return strong, [f"{name} {year}", f"{name}, {year}", f"{name} of {year}", year]


def _literal_forms(value: str) -> tuple[list[str], list[str]] | None:
    """Strong and weak forms of a date or a number with an optional unit; None for other literals."""
    date = _DATE.fullmatch(value)
    if date:
        year, month, day = date.groups()
        month_number = int(month) if month.isdigit() else _MONTH_ABBREVIATIONS.get(month.lower())
        if month_number and 1 <= month_number <= 12 and 1 <= int(day) <= 31:
            return _date_forms(year, month_number, int(day))
    quantity = re.fullmatch(rf"({_NUMBER.pattern})(?: ?\((.+)\))?", value)
    if not quantity:
        return None
    number, unit = quantity.groups()
    numbers = _number_forms(number)
    short = len(number.replace(",", "").split(".")[0].lstrip("-")) < 3 and "." not in number.rstrip("0").rstrip(".")
    bare = ([], numbers) if short else (numbers, [])  # `5` alone is too common to take every occurrence.
    if not unit:
        return bare
    units = _UNITS.get(unit, (unit,))
    with_unit = [f"{n} {u}" for n in numbers for u in units] + [f"{n}{u}" for n in numbers for u in units]
    return with_unit + bare[0], bare[1]


def _name_forms(name: str) -> list[str]:
    """Strong forms of a name: `Fort_Worth,_Texas` -> `Fort Worth, Texas`, `Fort Worth`; `Bionico_(dessert)` ->
    `Bionico`; `English_language` -> `English`; `A.F.C._Blackpool` -> `AFC Blackpool`."""
    name = name.replace("_", " ").translate(_PLAIN).strip()
    forms = [name]
    bare = re.sub(r"\s*\([^()]*\)$", "", name)  # A disambiguation suffix: `Bionico (dessert)`.
    if bare and bare != name:
        forms.append(bare)
    forms += [form.replace("(", "").replace(")", "") for form in forms if "(" in form]  # `(29075) 1950 DA`.
    # Not a list of numbers (`541, 458`): its first item is no name of it.
    forms += [form.split(",")[0] for form in forms if ", " in form and not form.split(",")[0].strip().isdigit()]
    forms += [form[:-len(suffix)] for form in forms for suffix in _GENERIC_SUFFIXES
              if form.lower().endswith(suffix) and len(form) > len(suffix)]
    forms += [form.replace("&", "and") for form in forms if "&" in form]
    forms += [form.replace("+", replacement) for form in forms if "+" in form for replacement in (" and ", " & ")]
    forms += [form.replace("'", "") for form in forms if "'" in form]  # `Dead Man's Plack`, `Dead Mans Plack`.
    forms += [form.replace("-", " ") for form in forms if "-" in form]
    forms += [_INITIALS.sub(lambda initials: initials.group().replace(".", ""), form) for form in forms
              if _INITIALS.search(form)]
    return list(dict.fromkeys(form for form in forms if form))


def _words(name: str) -> list[str]:
    """The words of a name without its disambiguation suffix and comma qualifier."""
    head = re.sub(r"\s*\([^()]*\)$", "", name.replace("_", " ")).split(",")[0]
    return head.split()


def _acronym_forms(name: str) -> list[str]:
    """Acronyms of a name of two or more capitalised words (`United States` -> `US`, `U.S.`; `United States Army`
    -> `US Army`), matched with case."""
    words = [word for word in _words(name) if word.lower() not in ("of", "the", "and")]
    forms = list(_ALIASES.get(" ".join(_words(name)), ()))
    if len(words) >= 2 and all(word[0].isupper() and word.isalpha() for word in words):
        initials = [word[0] for word in words]
        forms += ["".join(initials), ".".join(initials) + "."]
        for size in range(2, len(words)):  # `United States Army` -> `US Army`.
            rest = " ".join(words[size:])
            forms += [f"{''.join(initials[:size])} {rest}", f"{'.'.join(initials[:size])}. {rest}"]
    return forms


def _partial_forms(name: str) -> list[tuple[str, str, str]]:
    """Runs of words of a multi-word name that start and end on a capitalised, not generic word
    (`Alan Shepard` -> `Alan`, `Shepard`), used only with evidence from the entry's other texts; each with the
    name's words around it (folded, "" at the ends): a mention followed or preceded by them is no short form.
    A single word needs three letters (not `FC`) and no month (not `August` of `May 1950 - August 1956`)."""
    words = _words(name)
    specific = [word[0].isupper() and word.isalpha() and word.lower() not in _GENERIC_WORDS
                and word not in _MONTHS for word in words]
    return [(" ".join(words[start:end]), fold(words[start - 1]) if start else "",
             fold(words[end]) if end < len(words) else "")
            for start in range(len(words)) for end in range(start + 1, len(words) + 1)
            if (end - start) < len(words) and specific[start] and specific[end - 1]
            and (end - start > 1 or len(words[start]) > 2)]


@dataclasses.dataclass(frozen=True)
class _Form:
    keys: tuple[str, ...]
    tier: int
    cased: bool = False
    before: str = ""  # A partial form's neighbouring words in the name (see `_partial_forms`).
    after: str = ""
    dotted: bool = False  # The name has a period between words (`Admin._Sci._Q.`): a period token may sit inside.
    singular: bool = False  # A name without its plural ending (`Australians` -> `Australian`).


@functools.lru_cache(maxsize=100_000)
def entity_forms(entity: str) -> tuple[_Form, ...]:
    """Returns the surface forms of one entity, as comparison keys with their tier, most specific first."""
    value = entity.strip()
    literal = _literal_forms(value.replace('"', "").strip())
    if literal:
        tiers = [(_STRONG, literal[0], False, False), (_WEAK, literal[1], False, False)]
    else:
        value = value.strip("\"'")
        names = _name_forms(value)
        plurals = [form + ending for form in names for ending in ("s", "es")]
        singulars = [form[:-1] for form in names if form.endswith("s") and len(form) > 3]
        tiers = [(_STRONG, names, False, False), (_INFLECTED, plurals, False, False),
                 (_INFLECTED, singulars, False, True), (_ACRONYM, _acronym_forms(value), True, False),
                 (_LEARNED, _partial_forms(value), True, False)]
    forms = {}
    for tier, texts, cased, singular in tiers:
        for text in texts:
            text, before, after = text if isinstance(text, tuple) else (text, "", "")
            keys = _keys(text, casefold=not cased)
            if keys and (keys, cased) not in forms and (keys, False) not in forms:
                forms[keys, cased] = _Form(keys, tier, cased, before, after, "." in text.strip(". "), singular)
    return tuple(sorted(forms.values(), key=lambda form: (form.tier, -len(form.keys))))


def _qualified_forms(entity: str, entities: Sequence[str]) -> tuple[_Form, ...]:
    """The head of a name qualified by another entity of the same triples: `President_of_the_United_States` with
    `United_States` -> `President`, `Native_Americans_in_the_United_States` -> `Native Americans`."""
    name = fold(entity.replace("_", " "))
    heads = []
    for other in entities:
        qualifier = fold(re.sub(r"\s*\([^()]*\)$", "", other.replace("_", " ")).strip('"'))
        for joint in (" of ", " of the ", " in ", " in the "):
            if qualifier and name.endswith(joint + qualifier) and len(name) > len(joint + qualifier):
                heads.append(name[:-len(joint + qualifier)])
    return tuple(_Form(_keys(head), _INFLECTED) for head in dict.fromkeys(heads) if _keys(head))


def _overlaps(span: Span, spans: Sequence[Span]) -> bool:
    return any(span[0] < other[1] and other[0] < span[1] for other in spans)


class _Mentions:
    """Where the entities of one text's triples are mentioned in it."""

    def __init__(self, text: str, entities: Sequence[str]):
        self.tokens = tokenize_with_offsets(text)
        self.keys = _TextKeys.of(self.tokens)
        self.token_keys = [_token_keys(token.text) for token in self.tokens]
        self.spans = {entity: [(form, self.keys.spans(form))
                               for form in entity_forms(entity) + _qualified_forms(entity, entities)]
                      for entity in entities}

    def strong(self, entity: str) -> list[Span]:
        return [span for form, spans in self.spans[entity] if form.tier <= _INFLECTED for span in spans]

    def others_strong(self, entity: str) -> list[Span]:
        return [span for other in self.spans if other != entity for span in self.strong(other)]

    def unique(self, entity: str, form: _Form) -> Span | None:
        """The one place a weak form occurs, outside the strong mentions of the other entities and not next to the
        name's words around it; None if not one."""
        spans = dict(self.spans[entity])[form]
        if len(spans) != 1 or _overlaps(spans[0], self.others_strong(entity)):
            return None
        start, end = spans[0]
        if (form.before and start and self.token_keys[start - 1][-1] == form.before) or (
                form.after and end < len(self.tokens) and self.token_keys[end][0] == form.after):
            return None
        if _YEAR.fullmatch(form.keys[0]) and len(form.keys) == 1 and self._ends_written_date(start):
            return None  # A date's bare year, here the year of another date (`10th March 1983` for 1983-10-03).
        return spans[0]

    def _ends_written_date(self, start: int) -> bool:
        """Whether the token at `start` follows a month or a day (`March 1983`, `10, 1983`), a comma between."""
        before = [keys[-1] for keys in self.token_keys[max(start - 2, 0):start] if keys[-1] != ","][-1:]
        return bool(before) and (before[0][:3] in _MONTH_ABBREVIATIONS or bool(_DAY.fullmatch(before[0])))

    def modifies(self, span: Span) -> bool:
        """Whether a word other than a function word follows `span`: `Philippine` in `Philippine dish` is no
        mention of `Philippines`."""
        end = span[1]
        return end < len(self.tokens) and self.tokens[end].text.isalpha() and (
            self.token_keys[end][0] not in _FUNCTION_WORDS)


def _matches(entity: str, mentions: _Mentions, others: Sequence[_Mentions]) -> list[tuple[tuple[int, int], Span]]:
    """`(quality, span)` of every place an entity is mentioned; quality `(tier, -keys)`, lower is better.

    Acronyms count outside the other entities' strong mentions; weak and learned forms also only where they
    occur once;
    a learned form also needs an other text of the entry that holds it that way and no strong form of the entity.
    """
    matches = []
    for form, spans in mentions.spans[entity]:
        if form.tier == _ACRONYM:
            spans = [span for span in spans if not _overlaps(span, mentions.others_strong(entity))]
        elif form.tier >= _WEAK:
            span = mentions.unique(entity, form)
            spans = [span] if span else []
        if form.tier == _LEARNED and spans and not any(
                not other.strong(entity) and other.unique(entity, form) for other in others):
            continue
        if form.singular:
            spans = [span for span in spans if not mentions.modifies(span)]
        matches += [((form.tier, -len(form.keys)), span) for span in spans]
    # A mention inside another entity's longer one (`Acura` of `Acura TLX`) only where the entity has no other.
    others_strong = mentions.others_strong(entity)
    apart = [match for match in matches if not any(
        other[0] <= match[1][0] and match[1][1] <= other[1] and other != match[1] for other in others_strong)]
    return apart or matches


def _best_pair(subjects, objects):
    """The subject and object spans to use, or None where every pair shares one span."""
    best = None
    for (subject_quality, subject), (object_quality, object_) in itertools.product(subjects, objects):
        if subject == object_:
            continue
        distance = max(subject[0], object_[0]) - min(subject[1], object_[1])
        key = (_overlaps(subject, [object_]), subject_quality, object_quality, distance, subject[0], object_[0])
        if best is None or key < best[0]:
            best = (key, subject, object_)
    return best and best[1:]


def locate_triples(text: str, triples: Sequence[Triple], other_texts: Sequence[str] = ()) -> LocatedText:
    """Places each triple's subject and object in `text` as token spans.

    Args:
        text: one WebNLG text.
        triples: the `(subject, relation, object)` triples it states, entities as DBpedia names or literals.
        other_texts: the entry's other texts: evidence for short forms (`Shepard` for `Alan_Shepard`).

    Returns:
        The text's tokens, the placed triples and the dropped ones with their reason.

    Example:
    >>> located = locate_triples("Alan Bean was born in Wheeler, Texas.", [("Alan_Bean", "birthPlace", "Wheeler,_Texas")])
    >>> located.triples
    [((0, 2), 'birthPlace', (5, 8))]
    """
    entities = list(dict.fromkeys(entity for subject, _, object_ in triples for entity in (subject, object_)))
    mentions = _Mentions(text, entities)
    others = [_Mentions(other, entities) for other in other_texts]
    matches = {entity: _matches(entity, mentions, others) for entity in entities}
    located, dropped = [], []
    for subject, relation, object_ in triples:
        subjects, objects = matches[subject], matches[object_]
        if not subjects or not objects:
            reason = NEITHER_FOUND if not subjects and not objects else (
                SUBJECT_NOT_FOUND if not subjects else OBJECT_NOT_FOUND)
            dropped.append(((subject, relation, object_), reason))
            continue
        pair = _best_pair(subjects, objects)
        if pair is None:
            dropped.append(((subject, relation, object_), SAME_SPAN))
            continue
        located.append((pair[0], relation, pair[1]))
    return LocatedText(mentions.tokens, located, dropped)
