"""Key facts of a conversation between people: whole sentences, the speaker named, the
date written in the session header's own form, relative dates resolved, no greetings."""

from __future__ import annotations

from ctxbudget import Item, Kind, Role
from ctxbudget.compaction.chat import chat_turns, is_pleasantry, relative_to_date
from ctxbudget.compaction.summarize import summarize_extractive


def _words(text: str) -> int:
    return len(text.split())


def _chat(sessions: int = 12) -> list[Item]:
    lines: list[str] = []
    topics = [
        "I ran a charity race for mental health last Saturday and raised 300 dollars",
        "We adopted a beagle called Pepper from the shelter in Denver",
        "My sister Priya started a pottery class at the community college",
        "I finished the third draft of my screenplay about a lighthouse keeper",
        "Our team won the regional chess tournament in Boulder",
        "I am researching adoption agencies that work with single parents",
    ]
    for session in range(1, sessions + 1):
        header = f"[Session {session} — 1:56 pm on {session + 7} May, 2023]\n"
        for turn in range(6):
            speaker = "Caroline" if turn % 2 == 0 else "Melanie"
            topic = topics[(session + turn) % len(topics)]
            text = f"{speaker}: {topic} in week {session}. You've got guts!"
            lines.append((header if turn == 0 else "") + text)
    return [
        Item(
            role=Role.USER if n % 2 == 0 else Role.ASSISTANT,
            kind=Kind.USER_TEXT if n % 2 == 0 else Kind.ASSISTANT_TEXT,
            text=text,
        )
        for n, text in enumerate(lines)
    ]


def test_turns_carry_speaker_and_the_headers_date_in_its_own_form() -> None:
    turns = chat_turns(_chat())
    assert turns[0].speaker == "Caroline"
    assert turns[0].date == "8 May, 2023"
    assert not turns[0].body.startswith(("[", "Caroline"))
    assert turns[5].date == "8 May, 2023"  # carried forward within the session
    assert turns[6].date == "9 May, 2023"


_SPEAKERS = {"Caroline", "Melanie", "Maria", "Jon"}


def test_pleasantries_are_no_facts() -> None:
    for sentence in (
        "You've got guts.",
        "You'll be an awesome mom!",
        "Catch ya later!",
        "Woohoo, Maria!",
        "Oof, sorry to hear that.",
        "bummer about that.",
        "That mountaineering trip sounds amazing.",
        "Your passion inspires me.",
        "On another note",
        "That charity race sounds great, Mel!",  # her name (a part of it) said to her
        "I totally agree, Melanie.",
        "Maria, I agree.",
        "Woah, Maria, that sounds cool!",
        "Thanks, Mel.",
        "Congrats, Jon.",
        "No doubts, Caroline.",
        "I'm glad you're alright.",
        "I'll keep ya posted.",
        "Feel free to reach out any time.",
        "Anything fun?",
        "Here's a pic from the day.",
        "Have faith in yourself, Jon.",
        "Appreciate the kind words.",
    ):
        assert is_pleasantry(sentence, _SPEAKERS), sentence
    for sentence in (
        "The Minnesota Wolves!",
        "I ran a charity race for mental health",
        "That picture is from MinaLima.",  # it names something
        "Your trip to Zanzibar was wild",
        "Sorry I didn't get back to you sooner",
        "We even won a trophy!",  # what the speakers did, said with joy
        "It's a mix of drama and romance in my script!",
        # a first word before a comma is no name said to the other unless it is theirs
        "Sadly, that was my last day at Google.",
        "Paris, that's where we got engaged!",
        "Mom, this is my new puppy Coco!",
        "Tomorrow, you'll meet my parents in Boston.",
        # a name at the end that is no speaker's names a thing
        "Look at this view, Yosemite!",
        "Best concert ever, Coldplay!",
        # an aside that names something says something
        "No problem, the ferry to Nantucket leaves daily.",
        "I agree to host the party in Boston.",
        "Agreed to sell my car to Tom.",
        "I can't wait to see the Eiffel Tower!",
        "Anything else from the Tokyo trip?",
        "Come join us at the Boston marathon!",
        "Let's continue the hike to Half Dome tomorrow.",
        "Have faith in the surgeon at Mercy Hospital.",
        "I appreciate the ride to Denver.",
        "Let's go to Rome in May.",
        # a picture of something
        "Here's a pic of my new puppy Coco!",
        "Here's our wedding photo!",
        "Here's our picnic!",
    ):
        assert not is_pleasantry(sentence, _SPEAKERS), sentence
    # without the speakers' names, no word is taken for one
    assert not is_pleasantry("That charity race sounds great, Mel!")


def test_a_chat_speaker_saying_what_they_will_remember_is_no_agent_narration() -> None:
    """ "I'll …" from the assistant's side is an agent's next step in an agent session
    and left out; in a chat between people it is what they said (LoCoMo's speaker B)."""
    items = _chat()
    items.append(
        Item(
            role=Role.ASSISTANT,
            kind=Kind.ASSISTANT_TEXT,
            text="Melanie: I'll always remember our camping trip when we saw the Perseid "
            "meteor shower.",
        )
    )
    summary = summarize_extractive(items, [], 2000, _words)
    assert "Perseid meteor shower" in summary.partition("## Key facts")[2]
    agent = [
        Item(role=Role.USER, kind=Kind.USER_TEXT, text="Fix the failing parser tests please."),
        Item(
            role=Role.ASSISTANT,
            kind=Kind.ASSISTANT_TEXT,
            text="I'll check the tests now. The parser drops trailing commas in arrays.",
        ),
    ]
    agent_summary = summarize_extractive(agent, [], 200, _words)
    key_facts = agent_summary.partition("## Key facts")[2].partition("## Timeline")[0]
    assert "trailing commas" in key_facts
    assert "check the tests" not in key_facts


def test_relative_dates_are_said_relative_to_the_written_date() -> None:
    assert relative_to_date("I ran a race last Saturday") == "I ran a race the Saturday before"
    assert relative_to_date("we met yesterday") == "we met the day before"


def test_key_facts_name_speaker_and_date_and_cut_no_timestamp() -> None:
    summary = summarize_extractive(_chat(), [], 400, _words)
    facts = summary.split("## Key facts", 1)[1].splitlines()
    assert any(line.endswith("May, 2023:") for line in facts)
    entries = [line for line in facts if line.startswith("- ")]
    assert entries
    assert all(line.startswith(("- Caroline: ", "- Melanie: ")) for line in entries)
    assert "[1:56 pm" not in summary and "Session" not in "".join(entries)
    assert "guts" not in summary
    assert "last Saturday" not in summary


def test_key_facts_name_each_speaker_once_a_day() -> None:
    """One line per speaker under each date: a name written once a day, not once a
    message, leaves room for more facts (the issue: facts grouped by speaker)."""
    said = {
        "Caroline": ["adopted a kitten named", "painted a lake near", "joined a pottery class in",
                     "visited my cousin in"],
        "Melanie": ["ran ten kilometres in", "bought a violin from", "planted tomatoes in",
                    "read Dune on a train to"],
    }  # fmt: skip
    places = ["Lisbon", "Denver", "Vienna", "Oslo", "Kyoto", "Quito", "Dakar", "Perth"]
    items = []
    for day, place in enumerate(places):
        for turn in range(8):
            speaker = "Caroline" if turn % 2 == 0 else "Melanie"
            text = f"{speaker}: I {said[speaker][turn // 2]} {place} ({day}{turn})."
            if turn == 0:
                text = f"[Session {day + 1} — 1:56 pm on {day + 8} May, 2023]\n{text}"
            role = Role.USER if speaker == "Caroline" else Role.ASSISTANT
            kind = Kind.USER_TEXT if role is Role.USER else Kind.ASSISTANT_TEXT
            items.append(Item(role=role, kind=kind, text=text, message_index=len(items)))
    summary = summarize_extractive(items, [], 400, _words)
    facts = summary.split("## Key facts", 1)[1].splitlines()
    days: list[list[str]] = []
    for line in facts:
        if line.endswith("May, 2023:"):
            days.append([])
        elif line.startswith("- ") and days:
            days[-1].append(line.split(":", 1)[0])
    assert days and any(len(day) == 2 for day in days)
    assert all(len(day) == len(set(day)) for day in days)
    # what a speaker said that day follows in order, sentence after sentence
    assert any(". " in line.split(": ", 1)[1] for line in facts if line.startswith("- "))


def _key_facts_of(role: Role, kind: Kind, text: str) -> str:
    """The Key facts section of the summary of three messages saying ``text``."""
    items = [Item(role=role, kind=kind, text=f"{text}\nRound {n}.") for n in range(3)]
    summary = summarize_extractive(items, [], 300, _words)
    return summary.split("## Key facts", 1)[1].split("\n## ", 1)[0]


def test_markdown_scaffolding_is_no_key_fact() -> None:
    report = "\n".join(
        [
            "## QA Complete",
            "**Medium Priority Issues:**",
            "- **Fix** the session timeout in auth/session.py: tokens expire after 30 minutes.",
            "---",
            "Files changed:",
            "The retry loop in worker.py now backs off exponentially up to 8 seconds.",
        ]
    )
    facts = _key_facts_of(Role.ASSISTANT, Kind.ASSISTANT_TEXT, report)
    assert "QA Complete" not in facts and "Medium Priority" not in facts
    assert "Files changed:" not in facts and "**" not in facts
    assert "- Fix the session timeout in auth/session.py" in facts


def test_a_reaction_is_no_key_fact_outside_a_chat_either() -> None:
    said = [
        "Thanks, that's a clear starting point.",
        "Your assumptions hold.",
        "Trusted devices stay trusted for 30 days after the second factor.",
    ]
    facts = _key_facts_of(Role.USER, Kind.USER_TEXT, " ".join(said))
    assert "clear starting point" not in facts and "assumptions hold" not in facts
    assert "Trusted devices stay trusted for 30 days" in facts


def test_a_long_summary_alone_is_compacted_when_the_kept_exchanges_shrink() -> None:
    from ctxbudget.compaction import compact

    earlier = "\n".join(
        f"{n}. **Step {n}**: fixed the {word} check of round {n} and ran the tests again."
        for n, word in enumerate(["lint", "import", "render", "bodyclose", "duplicate"] * 12)
    )
    items = [
        Item(role=Role.USER, kind=Kind.SUMMARY, text=earlier, message_index=0),
        Item(role=Role.USER, kind=Kind.USER_TEXT, text="continue", message_index=1),
        Item(role=Role.USER, kind=Kind.USER_TEXT, text="fix the warnings", message_index=2),
    ]
    total = sum(_words(i.text) for i in items)
    result = compact(items, count=_words, target_tokens=total // 5)
    assert result.tokens_after <= total // 5
    assert "fix the warnings" in result.text()


def _key_facts_with(replies: dict[int, str], budget: int) -> str:
    """The key facts of the fixture chat with Melanie's replies at these positions."""
    items = _chat()
    for at, text in replies.items():
        items[at] = Item(role=Role.ASSISTANT, kind=Kind.ASSISTANT_TEXT, text=f"Melanie: {text}")
    return summarize_extractive(items, [], budget, _words).split("## Key facts", 1)[1]


def test_a_long_sentences_short_tail_stays_in_its_fact() -> None:
    """A chat's key fact is a whole sentence: its short tail ("Sweden.") often names
    the thing asked about later."""
    facts = _key_facts_with(
        {
            7: "Thanks, this necklace is super special to me, a gift from my grandmother "
            "in my home country, Sweden. She gave it to me when I was young."
        },
        400,
    )
    assert "home country, Sweden." in facts


def test_an_initial_or_a_title_ends_no_sentence() -> None:
    facts = _key_facts_with(
        {7: "J.K. Rowling inspires my writing. Dr. Lee in Boulder taught my class."}, 400
    )
    assert "J.K. Rowling inspires my writing" in facts
    assert "Dr. Lee in Boulder taught my class" in facts


def test_a_sentence_about_the_other_person_alone_gives_way_to_what_the_speaker_did() -> None:
    """In a chat, a sentence about the other person alone ("you …") reacts or asks; what
    the speaker did is the fact, said in their own words: it is kept first."""
    facts = _key_facts_with(
        {
            7: "Your trip to Zanzibar with Quokka and Xylophone sounded wild, Caroline.",
            9: "I started surfing lessons near the old harbor.",
        },
        60,
    )
    assert "surfing lessons near the old harbor" in facts
    assert "Zanzibar" not in facts


def test_the_extractive_summary_is_the_same_whatever_the_hash_seed() -> None:
    """Deterministic: the word weights of a sentence are summed in a set's order, which
    changes with PYTHONHASHSEED; near ties then picked other sentences run to run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from test_key_facts import _chat, _words\n"
        "from ctxbudget.compaction.summarize import summarize_extractive\n"
        "for budget in range(150, 900, 25):\n"
        "    print(summarize_extractive(_chat(), [], budget, _words))\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parent)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_a_chat_fact_is_a_whole_sentence_not_a_clause() -> None:
    """No clause cut out of a sentence ("or finding events in our town and beyond"):
    a fact reads as the speaker said it, with its subject and its object."""
    from ctxbudget.compaction.key_facts import sentences

    long = (
        "I adopted a beagle called Pepper from the shelter in Denver last spring, and we "
        "walk him by the river every single morning before work."
    )
    item = Item(role=Role.USER, kind=Kind.USER_TEXT, text=f"Wow, {long} Anything new?")
    facts = sentences([item], chat=True)
    assert facts == [long, "Anything new?"]  # the interjection left out, the rest whole
    picked = _key_facts_with(
        {
            7: "The grant enabled needed repairs and renovations at Lincoln Elementary, "
            "making the learning environment safer and more modern for the students."
        },
        400,
    )
    assert (
        "The grant enabled needed repairs and renovations at Lincoln Elementary, making the "
        "learning environment safer and more modern for the students." in picked
    )


def test_the_first_sessions_facts_carry_its_date_when_its_header_stays_verbatim() -> None:
    """Compaction keeps the first exchange as it is, header and all: the facts after it
    from the same session are still dated by that header."""
    from ctxbudget.compaction import compact

    items = _chat(sessions=20)
    total = sum(_words(i.text) for i in items)
    result = compact(items, count=_words, target_tokens=total // 3)
    summary = next(i.text for i in result.items if i.kind is Kind.SUMMARY)
    facts = summary.split("## Key facts", 1)[1].strip().splitlines()
    assert facts[0] == "8 May, 2023:", facts[:3]


def test_a_name_or_a_number_weighs_three_times_its_rarity() -> None:
    """What questions about a conversation ask for (a place, a person, a count) is
    picked before plainer words of the same rarity: three times, not twice, chosen
    leave-one-conversation-out on LoCoMo."""
    from ctxbudget.compaction.key_facts import pick_key_facts

    said = ["yesterday we visited Quimby", "gorgeous turquoise lagoon shimmered brightly"]
    # every word once: the same rarity. Room for one: 3 weighted words in 6 tokens
    # (1 + 1 + 3) / 6 beat 5 plain words in 7 (5 / 7); at twice, 4 / 6 would not
    assert pick_key_facts(said, 7, lambda text: len(text.split()), set()) == [0]


def test_i_after_a_comma_is_no_name() -> None:
    """ "As for me, I've been…" names nobody: a capital I after a comma does not weigh
    three times its rarity, or every such sentence would outrank one that names a place."""
    from ctxbudget.compaction.key_facts import pick_key_facts

    said = ["so, I've sailed solo", "we sailed to Quimby"]
    # 4 tokens each, room for one. Every word is as rare but "sailed" (in both) and
    # "so", "we", "to" (no weight): "I've" and "solo" (2) against "Quimby" (a name: 3);
    # were "I've" a name, 3 + 1 would win
    count = lambda text: len(text.split())  # noqa: E731
    assert pick_key_facts(said, 4, count, set(), separator_cost=0) == [1]


def test_a_number_in_words_weighs_as_a_number() -> None:
    """ "three turtles", "five years ago": a count said in words is what a question asks
    for as much as one in figures."""
    from ctxbudget.compaction.key_facts import pick_key_facts

    said = ["we kept three turtles", "gorgeous turquoise lagoon shimmered"]
    # every word once: the same rarity; 4 tokens each, room for one. "three" at three
    # times: (1 + 3 + 1) / 4 beat 4 / 4; as a plain word, 3 / 4 would not
    count = lambda text: len(text.split())  # noqa: E731
    assert pick_key_facts(said, 4, count, set(), separator_cost=0) == [0]


def test_a_statement_about_no_one_gives_way_in_a_chat() -> None:
    """ "Family means everything." says nothing of anyone: in a chat, what a speaker did
    is kept before it at about the same information per token."""
    from ctxbudget.compaction.key_facts import _GENERAL, pick_key_facts

    said = [
        "family means everything",
        "I kept small turtles outside near quiet pond gardens daily",
    ]
    count = lambda text: len(text.split())  # noqa: E731
    # room for one: 3 / 3 against 9 / 10; weighed 0.85, the general one gives way
    assert pick_key_facts(said, 10, count, set(), separator_cost=0) == [0]
    assert pick_key_facts(said, 10, count, set(), separator_cost=0, general=_GENERAL) == [1]


def test_a_chat_fact_is_said_without_its_fillers() -> None:
    """Intensifiers, interjections, laughs, hedges and emoji hold no fact: a fact costs
    fewer tokens without them and stays a whole sentence."""
    from ctxbudget.compaction.chat import tighten

    assert (
        tighten("Wow, I really just ran a charity race for mental health last Saturday, haha!")
        == "I ran a charity race for mental health last Saturday!"
    )
    assert tighten("I think it's totally worth it 😊") == "It's worth it"
    assert tighten("Yeah, we were so proud!") == "We were proud!"
    assert tighten("She is so sweet, so kind.") == "She is sweet, so kind."
    assert tighten("It's not just a hobby, you know, it's my life.") == (
        "It's not just a hobby, it's my life."
    )
    assert tighten("It was pretty rewarding, a long day.") == "It was rewarding, a long day."
    assert tighten("Definitely!") == ""


def test_tightening_keeps_the_words_that_carry_meaning() -> None:
    from ctxbudget.compaction.chat import tighten

    for same in (
        "I'm not really into horror movies.",  # "not really" means less than "not"
        "I think so.",
        "I think about the paths I've taken.",
        "You know what I love? Hiking.",
        "The ice cream was super good, rich and creamy.",  # "super" can be the answer
        "It's got so much to check out.",
        "I feel like a kid again.",
        "She wore a pretty dress; it's pretty much done.",
        # found by a review: each lost or changed its meaning, or its grammar
        "I think I'm pregnant!",  # a hedge before a claim about someone stays
        "I think that guy at the bakery is lying.",
        "It was so loud that I couldn't hear the band.",
        "It's so I can save for a house.",
        "I was so tired I fell asleep at 8.",
        "She's pretty and smart.",
        "She looks pretty in that blue dress.",
        "I read The Very Hungry Caterpillar to the kids.",  # titles keep their words
        "We played Just Dance all evening.",
        "Just three people came to the show.",  # "just" meaning "only"
        "I miss my grandma very much.",
        "Absolutely not.",
        "I cannot really afford a car.",
        "-20 degrees here this morning!",
    ):
        assert tighten(same) == same
    assert tighten("Oh, iPhone sales were down.") == "iPhone sales were down."


def test_a_chat_summary_writes_its_facts_tightened() -> None:
    items = _chat()
    items[4] = Item(
        role=items[4].role,
        kind=items[4].kind,
        text="Caroline: Oh, I just really love my new violin from Vienna, haha!",
    )
    summary = summarize_extractive(items, [], 400, _words)
    assert "I love my new violin from Vienna!" in summary
    assert "really" not in summary and "haha" not in summary


def test_thanks_for_something_is_never_cut_to_a_fragment() -> None:
    """The interjection stripper cut "Thanks," and left "Caroline, for letting me join
    your journey." as a key fact; a thanks for something stays whole, for the
    pleasantry filter to judge, and a thanks before a fact still gives the fact."""
    from ctxbudget.compaction.key_facts import sentences

    text = (
        "Thanks, Caroline, for letting me join your journey. Thank you so much for the "
        "advice! Thank you, I went for the vegan option at the wedding. Thanks for "
        "recommending Dune, I finished it in two days."
    )
    item = Item(role=Role.USER, kind=Kind.USER_TEXT, text=text)
    assert sentences([item], chat=True) == [
        "Thanks, Caroline, for letting me join your journey.",
        "Thank you so much for the advice!",
        "I went for the vegan option at the wedding.",
        "Thanks for recommending Dune, I finished it in two days.",
    ]
    assert is_pleasantry("Thanks, Caroline, for letting me join your journey.", ["Caroline"])
