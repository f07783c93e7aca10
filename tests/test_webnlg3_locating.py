"""Locating WebNLG 3.0 entities in their texts: one test per rule, no data files."""

import textwrap

from tfds_builders.webnlg3.locating import (NEITHER_FOUND, OBJECT_NOT_FOUND, SAME_SPAN, SUBJECT_NOT_FOUND,
                                            locate_triples, read_entries)


def spans(text, triples, other_texts=()):
    """The located triples as (subject words, relation, object words)."""
    located = locate_triples(text, triples, other_texts)
    words = [token.text for token in located.tokens]
    return [(" ".join(words[slice(*s)]), r, " ".join(words[slice(*o)])) for s, r, o in located.triples]


def test_names_underscores_and_initials():
    triple = [("Aaron_S._Daggett", "award", "Purple_Heart")]
    assert spans("Aaron S Daggett was awarded the Purple Heart.", triple) == [
        ("Aaron S Daggett", "award", "Purple Heart")]
    assert spans("Aaron S. Daggett was awarded the Purple Heart.", triple) == [
        ("Aaron S. Daggett", "award", "Purple Heart")]
    assert spans("N.R. Pogson discovered 107 Camilla.", [("107_Camilla", "discoverer", "N._R._Pogson")]) == [
        ("107 Camilla", "discoverer", "N.R. Pogson")]


def test_parenthesised_disambiguation_is_dropped():
    assert spans("Bionico is a dessert from Mexico.", [("Bionico_(dessert)", "country", "Mexico")]) == [
        ("Bionico", "country", "Mexico")]


def test_comma_qualifier_kept_or_dropped():
    triple = [("Alan_Bean", "birthPlace", "Wheeler,_Texas")]
    assert spans("Alan Bean was born in Wheeler, Texas.", triple) == [("Alan Bean", "birthPlace", "Wheeler , Texas")]
    assert spans("Alan Bean was born in Wheeler Texas.", triple) == [("Alan Bean", "birthPlace", "Wheeler Texas")]
    assert spans("Alan Bean was born in Wheeler.", triple) == [("Alan Bean", "birthPlace", "Wheeler")]


def test_quoted_literal():
    assert spans('The runway of Aarhus Airport is named 10L/28R.',
                 [("Aarhus_Airport", "runwayName", '"10L/28R"')]) == [("Aarhus Airport", "runwayName", "10L/28R")]


def test_dates_in_the_forms_texts_write():
    triple = [("Alan_Bean", "birthDate", '"1932-03-15"')]
    for written in ("March 15, 1932", "15 March 1932", "15th March 1932", "March 15th 1932", "15th of March, 1932"):
        assert spans(f"Alan Bean was born on {written}.", triple) == [
            ("Alan Bean", "birthDate", " ".join(written.replace(",", " ,").split()))]
    assert spans("Alan Bean was born in March 1932.", triple) == [("Alan Bean", "birthDate", "March 1932")]
    assert spans("Alan Bean was born in 1932.", triple) == [("Alan Bean", "birthDate", "1932")]


def test_a_bare_year_that_occurs_twice_is_not_guessed():
    located = locate_triples("In 1932 a storm hit Texas and in 1932 Alan Bean was born.",
                             [("Alan_Bean", "birthDate", '"1932-03-15"')])
    assert located.triples == []
    assert located.dropped == [(("Alan_Bean", "birthDate", '"1932-03-15"'), OBJECT_NOT_FOUND)]


def test_numbers_with_units_and_formatting():
    assert spans("The Runway is 1.5 km long.", [("Runway", "length", "1.5 (kilometres)")]) == [
        ("Runway", "length", "1.5 km")]
    assert spans("The Runway is 1.5 kilometres long.", [("Runway", "length", "1.5 (kilometres)")]) == [
        ("Runway", "length", "1.5 kilometres")]
    assert spans("The Runway is 1,500.0 metres long.", [("Runway", "length", '"1500.0"')]) == [
        ("Runway", "length", "1,500.0")]
    assert spans("The Runway is 1500 metres long.", [("Runway", "length", '"1500.0"')]) == [
        ("Runway", "length", "1500")]
    assert spans("The Runway has 5 lanes.", [("Runway", "lanes", "5.0")]) == [("Runway", "lanes", "5")]
    assert spans("Schiphol is -3.3528 metres above sea level.", [("Schiphol", "elevation", "-3.3528 (metres)")]) == [
        ("Schiphol", "elevation", "- 3.3528 metres")]


def test_accents_and_case():
    assert spans("The mayor of zurich is Corine Mauch.", [("Zürich", "leader", "Corine_Mauch")]) == [
        ("zurich", "leader", "Corine Mauch")]
    assert spans("Lars Lokke Rasmussen leads Denmark.", [("Denmark", "leader", "Lars_Løkke_Rasmussen")]) == [
        ("Denmark", "leader", "Lars Lokke Rasmussen")]


def test_forms_learned_from_the_entry_other_texts():
    triple = [("Alan_Shepard", "deathPlace", "California")]
    text = "Shepard died in California."
    assert locate_triples(text, triple).dropped == [(triple[0], SUBJECT_NOT_FOUND)]
    assert spans(text, triple, ["Shepard passed away in California."]) == [("Shepard", "deathPlace", "California")]
    # An other text that writes the full name is no evidence for the short form.
    assert spans(text, triple, ["Alan Shepard, or Shepard, died in California."]) == []


def test_acronyms_match_with_their_case_only():
    triple = [("Alpena,_Michigan", "country", "United_States")]
    assert spans("Alpena, Michigan is in the U.S.", triple) == [("Alpena , Michigan", "country", "U.S")]
    assert spans("Alpena, Michigan is in the US.", triple) == [("Alpena , Michigan", "country", "US")]
    assert spans("Alpena, Michigan is near us.", triple) == []
    assert spans("The UK has many cities; Bath is one city of the UK.", [("Bath", "country", "United_Kingdom")]) == [
        ("Bath", "country", "UK")]
    assert spans("Abner W Sibal served in the US Army.", [("Abner_W._Sibal", "branch", "United_States_Army")]) == [
        ("Abner W Sibal", "branch", "US Army")]


def test_generic_suffix_and_plural():
    assert spans("English is spoken in Alderney.", [("Alderney", "language", "English_language")]) == [
        ("Alderney", "language", "English")]
    assert spans("Almonds are flowering plants.", [("Almond", "division", "Flowering_plant")]) == [
        ("Almonds", "division", "flowering plants")]


def test_qualifier_that_is_the_other_entity_is_dropped():
    assert spans("The President leads the United States.",
                 [("United_States", "leaderTitle", "President_of_the_United_States")]) == [
        ("United States", "leaderTitle", "President")]
    assert spans("The President leads the United States.", [("United_States", "leaderTitle", "President_of_France")]) == []


def test_entity_not_found_is_dropped_with_its_reason():
    located = locate_triples("Alan Shepard is dead.", [("Alan_Shepard", "status", '"Deceased"'),
                                                       ("Buzz_Aldrin", "status", '"Retired"')])
    assert located.triples == []
    assert located.dropped == [(("Alan_Shepard", "status", '"Deceased"'), OBJECT_NOT_FOUND),
                               (("Buzz_Aldrin", "status", '"Retired"'), NEITHER_FOUND)]


def test_subject_and_object_never_share_a_span():
    located = locate_triples("Texas is big.", [("Texas", "isPartOf", "Texas")])
    assert located.dropped == [(("Texas", "isPartOf", "Texas"), SAME_SPAN)]
    # Two occurrences: each side takes one, the nearest pair.
    assert locate_triples("Texas and Texas.", [("Texas", "isPartOf", "Texas")]).triples == [
        ((0, 1), "isPartOf", (2, 3))]


def test_longer_match_and_nearest_occurrence_win():
    assert spans("Wheeler, Texas is in Texas.", [("Wheeler,_Texas", "isPartOf", "Texas")]) == [
        ("Wheeler , Texas", "isPartOf", "Texas")]
    located = locate_triples("Texas is a big state far from here; Alan Bean was born in Texas.",
                             [("Alan_Bean", "birthPlace", "Texas")])
    assert located.triples == [((9, 11), "birthPlace", (14, 15))]


def test_mentions_cover_whole_tokens_only():
    assert spans("A Texas-based firm hired Alan Bean.", [("Alan_Bean", "birthPlace", "Texas")]) == []


def test_read_entries(tmp_path):
    path = tmp_path / "Airport.xml"
    path.write_text(textwrap.dedent("""\
        <?xml version='1.0' encoding='utf-8'?>
        <benchmark><entries>
          <entry category="Airport" eid="Id1" shape="(X (X))" shape_type="NA" size="1">
            <originaltripleset><otriple>Aarhus | leaderName | Jacob_Bundsgaard</otriple></originaltripleset>
            <modifiedtripleset><mtriple> Aarhus | leader | Jacob_Bundsgaard </mtriple></modifiedtripleset>
            <lex comment="good" lid="Id1">Aarhus is led by Jacob Bundsgaard.</lex>
            <lex comment="good" lid="Id2">Jacob Bundsgaard leads Aarhus.</lex>
          </entry>
        </entries></benchmark>
        """), encoding="utf-8")
    [entry] = read_entries(path)
    assert (entry.category, entry.eid, entry.size) == ("Airport", "Id1", 1)
    assert entry.triples == [("Aarhus", "leader", "Jacob_Bundsgaard")]
    assert entry.lexes == [("Id1", "Aarhus is led by Jacob Bundsgaard."), ("Id2", "Jacob Bundsgaard leads Aarhus.")]


def test_a_mention_inside_another_entitys_is_taken_only_where_there_is_no_other():
    triples = [("Honda", "division", "Acura"), ("Acura_TLX", "manufacturer", "Honda")]
    located = locate_triples("Acura is a division of Honda which makes the Acura TLX.", triples)
    assert located.triples == [((5, 6), "division", (0, 1)), ((9, 11), "manufacturer", (5, 6))]  # Not `Acura` (9).
    assert locate_triples("Honda makes the Acura TLX.", triples).triples == [
        ((0, 1), "division", (3, 4)), ((3, 5), "manufacturer", (0, 1))]


def test_a_name_does_not_run_across_a_sentence_end():
    text = "Atlantic City is part of New Jersey, where the state capital is Trenton. New Jersey is in the US."
    assert spans(text, [("New_Jersey", "capital", "Trenton,_New_Jersey"),
                        ("Atlantic_City,_New_Jersey", "isPartOf", "New_Jersey")]) == [
        ("New Jersey", "capital", "Trenton"), ("Atlantic City", "isPartOf", "New Jersey")]
    assert spans("Admin. Sci. Q is a journal.", [("Admin._Sci._Q.", "genre", "Journal")]) == [
        ("Admin. Sci . Q", "genre", "journal")]  # `Sci.` read as a sentence end.


def test_a_name_without_its_plural_ending_is_no_mention_before_a_noun():
    assert spans("Batchoy, a Philippine dish, includes noodles.", [("Batchoy", "country", "Philippines")]) == []
    assert spans("Hypermarcas is a pharmaceutical company.", [("Hypermarcas", "product", "Pharmaceuticals")]) == []
    assert spans("AIDAstella is operated by the AIDA Cruise Line.", [("AIDAstella", "operator", "AIDA_Cruises")]) == []
    assert spans("The book's author is Australian and lives in Sydney.",
                 [("The_book", "nationality", "Australians")]) == [("The book", "nationality", "Australian")]


def test_a_bare_year_of_another_written_date_is_not_taken():
    triple = [("Alan_Bean", "birthDate", '"1983-10-03"')]
    for written in ("10th March 1983", "March 1983", "March 10, 1983"):
        assert spans(f"Alan Bean was born on {written}.", triple) == []
    assert spans("Alan Bean was born in 1983.", triple) == [("Alan Bean", "birthDate", "1983")]


def test_a_list_of_numbers_is_not_its_first_item():
    assert spans("Albany, Oregon has area codes 541 and 458.", [("Albany,_Oregon", "areaCode", '"541, 458"')]) == []
    assert spans("Albany, Oregon has area codes 541, 458.", [("Albany,_Oregon", "areaCode", '"541, 458"')]) == [
        ("Albany , Oregon", "areaCode", "541 , 458")]
