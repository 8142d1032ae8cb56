"""Fit the ``estimate`` token counter's coefficients on a synthetic corpus.

Generates a deterministic (seeded) training corpus of its own: English-like prose and
chat dialogue built from word lists, markdown, code in Python, JavaScript, Go and
shell, JSON documents (pretty and compact, with escaped code and logs inside strings),
logs, and non-ASCII text (accented Latin, Cyrillic, Greek, CJK, emoji). Each document
(a few hundred characters to a few KB) is counted exactly with o200k_base, and the
linear model of ``ctxbudget.tokens.estimate.features`` is fitted by weighted least
squares on relative error (pure-Python normal equations, a little ridge towards zero),
then refined by iteratively reweighted least squares towards the least mean absolute
percentage error. A second corpus with another seed validates the fit. Writes
``src/ctxbudget/tokens/estimate_coefficients.json``.

Usage, from the repository root::

    python tools/fit_estimator.py            # fit and write the coefficients
    python tools/fit_estimator.py --dry-run  # fit and report, write nothing

For Claude's tokenizer (Python 3.12+ with ctok), real text is added: the standard
library, /usr/include, and snapshots of public repositories taken with ``git archive``
into one folder (Go, TypeScript, Rust and markdown, which neither of the first two
has); ``--real-source`` names them in the coefficients' comment::

    python tools/fit_estimator.py --target claude --real STDLIB --real /usr/include \
        --real /tmp/realtext --real-source "github:spf13/cobra@adbc8813901b" ...
"""

from __future__ import annotations

import argparse
import json
import math
import random
import string
import sys
import sysconfig
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src" / "ctxbudget" / "tokens" / "estimate_coefficients.json"
DEFAULT_SEED = 1729
DEFAULT_DOCS = 4000

# --------------------------------------------------------------------------- words


def _words(text: str) -> list[str]:
    return text.split()


FUNCTION_WORDS = _words(
    """
the of and to a in is it you that he was for on are with as I his they be at one have
this from or had by not but what some we can out other were all there when up use your
how said an each she which do their time if will way about many then them would like so
these her make see him two has look more could go come did no most my over know than
call first who may down been now find any new get just only into also back after because
very where through much before too same our should well here must why still should even
those while both between never under last might again off always own such us every
really got going think want need something anything nothing everything someone maybe
yes yeah okay sure oh wow thanks thank please sorry hey hi hello right
"""
)

NOUNS = _words(
    """
people year way day man thing woman life child world school state family student group
country problem hand part place case week company system program question work government
number night point home water room mother area money story fact month lot right study book
eye job word business issue side kind head house service friend father power hour game line
end member law car city community name president team minute idea kid body information back
parent face others level office door health person art war history party result change
morning reason research girl guy moment air teacher force education foot boy age policy
process music market sense nation plan college interest death experience effect class
control care field development role effort rate heart drug show leader light voice wife
police mind price report decision son view relationship town road arm difference value
building action model season society tax director position player record paper space ground
form event official matter center couple site project activity star table need court oil
situation cost industry figure street image phone data picture practice piece land product
doctor wall patient worker news test movie north love support technology step baby computer
type attention film tree source organization hair window evidence population camera dog cat
painting pottery garden beach hiking camping concert festival vacation weekend holiday
birthday wedding dinner breakfast lunch coffee recipe kitchen bakery restaurant journey
adventure mountain river forest ocean sunset sunrise photograph photography sculpture
guitar piano violin drawing poetry novel chapter library museum gallery exhibition
volunteer charity shelter workshop conference seminar meeting interview presentation
schedule deadline project manager engineer designer developer scientist researcher
nurse lawyer musician artist writer athlete coach mentor neighbor colleague partner
grandmother grandfather daughter sister brother cousin husband children puppy kitten
"""
)

VERBS = _words(
    """
say make go know take see come think look want give use find tell ask work seem feel try
leave call keep let begin help talk turn start show hear play run move live believe hold
bring happen write provide sit stand lose pay meet include continue set learn change lead
understand watch follow stop create speak read allow add spend grow open walk win offer
remember consider appear buy wait serve die send expect build stay fall cut reach kill
remain suggest raise pass sell require report decide pull explain hope develop carry break
receive agree support hit produce eat cover catch draw choose cause point listen realize
enjoy celebrate inspire encourage appreciate imagine explore discover travel paint
practice volunteer organize prepare finish manage improve share visit plan cook bake
"""
)

ADJECTIVES = _words(
    """
good new first last long great little own other old right big high different small large
next early young important few public bad same able late hard major better economic strong
possible whole free military true federal international full special easy clear recent
certain personal open red difficult available likely short single medical current wrong
private past foreign fine common poor natural significant similar hot dead central happy
serious ready simple left physical general environmental financial blue democratic dark
various entire close legal religious cold final main green nice huge popular traditional
cultural wonderful amazing awesome beautiful incredible fantastic exciting interesting
grateful thankful proud lucky peaceful creative supportive positive healthy busy tired
stressful challenging rewarding meaningful inspiring relaxing delicious gorgeous adorable
"""
)

ADVERBS = _words(
    """
only also then now even still just really never always often sometimes usually actually
probably certainly finally recently especially exactly definitely absolutely totally
honestly seriously hopefully basically literally obviously currently previously
"""
)

LONG_WORDS = _words(
    """
understanding responsibility unfortunately relationship information development
environment opportunity particularly organization performance management conversation
independent experience significant technology international government especially
accomplishment encouragement inspiration determination appreciation celebration
transformation transportation communication neighborhood entertainment achievement
confidence motivation creativity connection community friendship adventure
resilience mindfulness wellbeing self-care journaling meditation therapy counseling
scholarship internship graduation university semester assignment homework professor
architecture infrastructure configuration implementation documentation specification
"""
)

CASUAL_WORDS = _words(
    """
lol haha omg btw tbh idk gonna wanna gotta kinda sorta yep nope yay ugh hmm aww woah
cool sweet great nice awesome totally super pretty definitely glad stoked psyched
"""
)

NAMES = _words(
    """
James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony
Betty Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle
Kevin Carol Brian Amanda George Melissa Timothy Deborah Olivia Liam Emma Noah Ava Sophia
Isabella Mia Lucas Ethan Harper Evelyn Aiden Chloe Zoe Priya Arjun Wei Mei Hiroshi Yuki
Carlos Sofia Mateo Lucia Ahmed Fatima Omar Leila Ivan Olga Dmitri Anya Kofi Amara Nia
London Paris Tokyo Berlin Chicago Seattle Boston Denver Austin Toronto Sydney Madrid Rome
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April
May June July August September October November December Google Netflix Spotify Amazon
"""
)

SYLLABLES = _words(
    """
ka ri to na me lo sa vi ren dor mil tha zan quo bel fen gar hul jor kel lum nir pax ros
sul tev ul vor wen xan yel zor bra cre dri fla glo pre str tri ven mar lin dex tor
"""
)

IRREGULAR_VERBS = set(
    _words(
        """say make go know take see come think give find tell feel leave keep let begin run hold
    bring write sit stand lose pay meet lead understand speak read spend grow win buy send build
    fall cut sell break hit eat catch draw choose set"""
    )
)

UNCOUNTABLE = set(
    _words(
        """music news money evidence attention others police information health education research
    advice data pottery poetry photography hair air oil art love support camping hiking"""
    )
)
IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "wife": "wives",
    "life": "lives",
    "person": "people",
    "people": "people",
    "children": "children",
}

SUFFIXES = ["s", "ed", "ing", "ly", "ness", "ment", "er", "est", "ful", "able", "ion", "ity"]
PREFIXES = ["un", "re", "pre", "over", "under", "out", "non", "co", "sub", "inter"]

PROG_WORDS = _words(
    """
get set value data file path name config request response error count index buffer parse
load save read write open close start stop run exec call send recv handle process result
item items list dict map key keys values node tree graph edge child parent root user users
account session token auth login logout cache store table row column query filter sort
order group select insert update delete create remove append extend pop push shift merge
split join format encode decode render template view model controller service client
server host port address url uri http https socket stream channel queue task job worker
thread lock mutex event signal timer timeout retry delay interval limit offset size length
width height max min sum avg total first last next prev current default options settings
params args kwargs flags mode type kind status state level debug info warning message
log logger handler callback hook plugin module package import export build test check
validate verify assert expect mock patch fixture setup teardown context manager factory
builder adapter wrapper proxy helper util utils common base core main app api cli cmd
input output source target dest src dst tmp temp dir directory folder env environment
version revision commit branch tag diff patch repo remote origin upstream local global
init reset clear flush sync async await future promise resolve reject emit listen bind
connect disconnect attach detach register unregister subscribe publish notify dispatch
schema field fields attr attrs property method function class instance object array
string number boolean integer float bytes char int str bool byte ptr ref len cap
"""
)

ABBREVIATIONS = _words(
    """
tmp cfg ctx buf idx fn err msg req res resp env obj ptr num val var arg ret cnt pos
src dst len str int fmt repr attr init impl util conf spec proc addr mgr svc db io os
"""
)

PY_KEYWORDS_BUILTINS = _words(
    """
self cls None True False isinstance getattr setattr hasattr len range enumerate zip
sorted reversed print super dict list tuple set str int float bytes open iter next
"""
)

ACCENTED_WORDS = _words(
    """
café naïve über straße niño año élève être déjà garçon façade résumé crème brûlée
français español português München Zürich São Paulo Bogotá Málaga coração ação
educação informação está também não você olá señor mañana canción corazón niña
größe schön müssen fünf wählen Grüße été hôtel fenêtre forêt château où très
"""
)

CJK_CHARS = (
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能"
    "对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前"
    "面又定见只主没公从工程数据文件系统问题时间今天明天喜欢朋友学习工作"
)
KATAKANA = (
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
)
HANGUL = "안녕하세요감사합니다사랑해요한국어데이터파일시간오늘내일친구학교회사"
EMOJI = _words(
    "😀 😂 🥰 😍 🙏 👍 🎉 🔥 💪 ✨ 🌟 ❤️ 😊 🤔 😅 🙌 👏 🌈 ☀️ 🍕 ☕ 🐶 🎨 📸 🏃 🧘 🚀 ✅ ❌ ⚠️ 📝 💡"
)
CJK_PUNCT = "，。！？、：；「」（）"
TYPOGRAPHIC = ["–", "—", "’", "“", "”", "…", "•", "→", "€", "£", "©", "°", "×"]

SENTENCES: dict[str, list[str]] = {
    "zh": [
        "我们今天下午去公园散步，天气非常好。",
        "这个项目的主要目标是提高系统的性能和稳定性。",
        "请在提交代码之前运行所有的测试。",
        "他昨天晚上在图书馆看了一本关于历史的书。",
        "如果你有任何问题，请随时联系我们。",
        "数据库连接失败，请检查配置文件中的地址和端口。",
        "我觉得这个想法很好，但是需要更多的时间来完成。",
        "学习一门新的语言需要耐心和坚持。",
        "公司决定明年在上海开设一个新的办公室。",
        "这个函数返回一个包含所有用户信息的列表。",
    ],
    "ja": [
        "今日はとても良い天気ですね。",
        "このファイルを開いて、設定を確認してください。",
        "私は毎朝コーヒーを飲みながらニュースを読みます。",
        "エラーが発生しました。もう一度やり直してください。",
        "来週の会議の資料を準備しなければなりません。",
        "東京から大阪まで新幹線で約二時間半かかります。",
        "この関数は入力された文字列を解析して結果を返します。",
        "週末は友達と一緒に映画を見に行きました。",
    ],
    "ko": [
        "오늘은 날씨가 정말 좋네요.",
        "이 파일을 열어서 설정을 확인해 주세요.",
        "저는 매일 아침 커피를 마시면서 뉴스를 읽습니다.",
        "오류가 발생했습니다. 다시 시도해 주세요.",
        "다음 주 회의 자료를 준비해야 합니다.",
        "주말에 친구들과 함께 영화를 보러 갔어요.",
        "이 함수는 입력된 문자열을 분석하여 결과를 반환합니다.",
        "한국어를 배우는 것은 재미있지만 어렵습니다.",
    ],
    "cyrillic_greek": [
        "Сегодня очень хорошая погода, и мы пошли гулять в парк.",
        "Пожалуйста, проверьте настройки в файле конфигурации.",
        "Эта функция возвращает список всех пользователей системы.",
        "Я читаю новости каждое утро за чашкой кофе.",
        "Произошла ошибка при подключении к базе данных.",
        "Мы должны закончить этот проект до конца месяца.",
        "Спасибо большое за вашу помощь и поддержку!",
        "Σήμερα ο καιρός είναι πολύ ωραίος.",
        "Παρακαλώ ελέγξτε τις ρυθμίσεις του αρχείου.",
        "Η συνάρτηση επιστρέφει μια λίστα με όλους τους χρήστες.",
        "Ευχαριστώ πολύ για τη βοήθειά σας!",
    ],
    "ar_hi": [
        "الطقس جميل جدا اليوم.",
        "يرجى التحقق من إعدادات الملف.",
        "شكرا جزيلا على مساعدتك.",
        "سنلتقي غدا في الصباح في المكتب.",
        "هذه الدالة تعيد قائمة بجميع المستخدمين.",
        "आज मौसम बहुत अच्छा है।",
        "कृपया फ़ाइल की सेटिंग्स जांचें।",
        "आपकी मदद के लिए बहुत धन्यवाद!",
        "हम कल सुबह दफ़्तर में मिलेंगे।",
        "यह फ़ंक्शन सभी उपयोगकर्ताओं की सूची लौटाता है।",
    ],
    "latin": [
        "Hoy hace un día muy bonito y vamos a caminar por el parque.",
        "Por favor, revisa la configuración del archivo antes de continuar.",
        "¿Cuándo es la próxima reunión del equipo?",
        "La función devuelve una lista con todos los usuarios.",
        "Muchas gracias por tu ayuda, fue muy útil.",
        "Aujourd'hui, il fait très beau et nous allons nous promener.",
        "Veuillez vérifier les paramètres du fichier de configuration.",
        "Cette fonction renvoie la liste de tous les utilisateurs.",
        "Merci beaucoup pour votre aide, c'était très utile.",
        "Heute ist das Wetter sehr schön, und wir gehen im Park spazieren.",
        "Bitte überprüfen Sie die Einstellungen in der Konfigurationsdatei.",
        "Diese Funktion gibt eine Liste aller Benutzer zurück.",
        "Vielen Dank für Ihre Hilfe, das war sehr nützlich.",
        "Hoje o tempo está muito bom e vamos passear no parque.",
        "Por favor, verifique as configurações do arquivo.",
        "Muito obrigado pela sua ajuda!",
    ],
}

# --------------------------------------------------------------------------- sampling


def inflect(word: str, suffix: str) -> str:
    """English regular inflection, good enough for word statistics."""
    if suffix == "s":
        if word in UNCOUNTABLE:
            return word
        if word in IRREGULAR_PLURALS:
            return IRREGULAR_PLURALS[word]
        if word.endswith(("s", "x", "ch", "sh", "o")):
            return word + "es"
        if word.endswith("y") and word[-2:-1] not in "aeiou":
            return word[:-1] + "ies"
        return word + "s"
    if _double_final(word):
        word += word[-1]
    if suffix == "ed":
        if word.endswith("e"):
            return word + "d"
        if word.endswith("y") and word[-2:-1] not in "aeiou":
            return word[:-1] + "ied"
        return word + "ed"
    if word.endswith("e") and not word.endswith("ee"):
        return word[:-1] + "ing"
    return word + "ing"


def _double_final(word: str) -> bool:
    """Short consonant-vowel-consonant verbs double their last letter (run, running)."""
    vowels = "aeiou"
    return (
        (len(word) <= 4 or word == "begin")
        and len(word) >= 3
        and word[-1] not in vowels + "wxy"
        and word[-2] in vowels
        and word[-3] not in vowels
    )


class Sampler:
    """Zipf-like sampling from word lists, all from one seeded ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._cum: dict[int, list[float]] = {}

    def zipf(self, words: list[str], s: float = 1.0, offset: float = 2.0) -> str:
        key = id(words)
        cum = self._cum.get(key)
        if cum is None:
            total = 0.0
            cum = []
            for rank in range(len(words)):
                total += 1.0 / (rank + offset) ** s
                cum.append(total)
            self._cum[key] = cum
        return self.rng.choices(words, cum_weights=cum)[0]

    def pseudo_word(self, lo: int = 2, hi: int = 4) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(lo, hi)))

    def content_word(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            word = self.zipf(NOUNS, s=0.6, offset=10)
            if rng.random() < 0.25:
                word = inflect(word, "s")
        elif r < 0.72:
            word = self.zipf(VERBS, s=0.6, offset=10)
            q = rng.random()
            if q < 0.12:
                word = inflect(word, "s")
            elif q < 0.24 and word not in IRREGULAR_VERBS:
                word = inflect(word, "ed")
            elif q < 0.36:
                word = inflect(word, "ing")
        elif r < 0.87:
            word = self.zipf(ADJECTIVES, s=0.6, offset=10)
        elif r < 0.94:
            word = self.zipf(ADVERBS, s=0.6, offset=10)
        elif r < 0.992:
            word = rng.choice(LONG_WORDS)
        elif r < 0.996:
            word = rng.choice(PREFIXES) + rng.choice(NOUNS + VERBS) + rng.choice(SUFFIXES)
        else:
            word = self.pseudo_word()
        return word

    def word(self, casual: bool = False) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.50:
            return self.zipf(FUNCTION_WORDS, s=1.0, offset=3)
        if r < 0.94:
            return self.content_word()
        if r < 0.97:
            return rng.choice(CASUAL_WORDS) if casual else self.content_word()
        if r < 0.99:
            return rng.choice(NAMES)
        return self.pseudo_word().capitalize()

    def number(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.4:
            return str(rng.randint(0, 100))
        if kind < 0.55:
            return str(rng.randint(1900, 2030))
        if kind < 0.7:
            return f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}"
        if kind < 0.8:
            return f"{rng.uniform(0, 100):.{rng.randint(1, 3)}f}"
        if kind < 0.9:
            return f"{rng.randint(1, 99)}%"
        return f"${rng.randint(1, 9999):,}"

    # ----------------------------------------------------------------- prose

    def sentence(self, casual: bool = False, max_words: int = 22) -> str:
        rng = self.rng
        n = rng.randint(3, max_words)
        words: list[str] = []
        for i in range(n):
            r = rng.random()
            if r < 0.004:
                w = self.number()
            elif r < 0.02:
                w = self.content_word() + "-" + self.content_word()
            elif r < 0.05:
                w = rng.choice(
                    [
                        "it's",
                        "I'm",
                        "don't",
                        "can't",
                        "that's",
                        "I've",
                        "you're",
                        "we'll",
                        "didn't",
                        "won't",
                        "isn't",
                        "there's",
                        "I'd",
                        "let's",
                    ]
                )
            elif r < 0.055:
                w = rng.choice(NAMES) + "'s"
            else:
                w = self.word(casual)
            if i and rng.random() < 0.07:
                words[-1] += ","
            if rng.random() < 0.015:
                w = f"({w}"
                words.append(w)
                words.append(self.word() + ")")
                continue
            if rng.random() < 0.015:
                w = f'"{w} {self.word()}"'
            words.append(w)
        text = " ".join(words)
        text = text[0].upper() + text[1:]
        end = rng.choices([".", "!", "?", "...", "!!", ":"], [70, 12, 12, 3, 2, 1])[0]
        return text + end

    def paragraph(self, casual: bool = False) -> str:
        return " ".join(self.sentence(casual) for _ in range(self.rng.randint(2, 7)))

    def comment_text(self) -> str:
        return self.sentence(max_words=12).rstrip(".!?:")

    # ----------------------------------------------------------------- identifiers

    def ident_part(self) -> str:
        r = self.rng.random()
        if r < 0.65:
            return self.zipf(PROG_WORDS, s=0.8, offset=5)
        if r < 0.85:
            return self.rng.choice(ABBREVIATIONS)
        if r < 0.95:
            return self.content_word()
        return self.pseudo_word(1, 3)

    def ident(self, style: str = "snake") -> str:
        rng = self.rng
        parts = [self.ident_part() for _ in range(rng.choices([1, 2, 3, 4], [40, 35, 18, 7])[0])]
        if rng.random() < 0.08:
            parts[-1] += str(rng.randint(0, 9))
        if style == "snake":
            return "_".join(parts)
        if style == "camel":
            return parts[0] + "".join(p.capitalize() for p in parts[1:])
        if style == "pascal":
            return "".join(p.capitalize() for p in parts)
        if style == "upper":
            return "_".join(parts).upper()
        if style == "flat":
            return "".join(parts)
        return "-".join(parts)

    def string_literal(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.comment_text()
        if r < 0.6:
            return self.ident(self.rng.choice(["snake", "kebab", "flat"]))
        if r < 0.8:
            return self.path()
        return self.rng.choice(["%s", "{}", "{name}", "utf-8", "r", "w", "rb", "", " ", "\\n"])

    def path(self) -> str:
        rng = self.rng
        parts = [
            self.ident(rng.choice(["snake", "flat", "kebab"])) for _ in range(rng.randint(1, 4))
        ]
        ext = rng.choice([".py", ".js", ".go", ".json", ".txt", ".md", ".log", ".yaml", "", "/"])
        root = rng.choice(["/", "./", "", "~/", "/usr/local/", "/home/user/", "src/"])
        return root + "/".join(parts) + ext

    def url(self) -> str:
        rng = self.rng
        host = f"{self.ident('flat')}.{rng.choice(['com', 'org', 'io', 'dev', 'net'])}"
        return f"https://{host}/{self.path().lstrip('/~.')}"

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def uuid(self) -> str:
        return "-".join(self.hex(n) for n in (8, 4, 4, 4, 12))

    def timestamp(self) -> str:
        rng = self.rng
        return (
            f"{rng.randint(2015, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            + rng.choice(["Z", ".123Z", f".{rng.randint(0, 999999):06d}", "+00:00"])
        )

    def random_token(self) -> str:
        rng = self.rng
        n = rng.randint(8, 40)
        alphabet = string.ascii_letters + string.digits
        return "".join(rng.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------- documents


def gen_prose(sp: Sampler, size: int) -> str:
    out: list[str] = []
    while sum(map(len, out)) < size:
        out.append(sp.paragraph())
    return sp.rng.choice(["\n\n", "\n", " "]).join(out)


def gen_dialogue(sp: Sampler, size: int) -> str:
    rng = sp.rng
    speakers = rng.sample(NAMES[:80], 2)
    lines: list[str] = []
    total = 0
    while total < size:
        n = rng.randint(1, 4)
        text = " ".join(sp.sentence(casual=True, max_words=16) for _ in range(n))
        if rng.random() < 0.08:
            text += " " + rng.choice(EMOJI)
        line = f"{speakers[len(lines) % 2]}: {text}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def gen_markdown(sp: Sampler, size: int) -> str:
    rng = sp.rng
    out: list[str] = []
    total = 0
    while total < size:
        r = rng.random()
        if r < 0.15:
            block = "#" * rng.randint(1, 3) + " " + sp.comment_text().title()
        elif r < 0.4:
            bullet = rng.choice(["-", "*", "1.", "- ✅", "- ❌"])
            block = "\n".join(
                f"{bullet} " + sp.sentence(max_words=14) for _ in range(rng.randint(2, 6))
            )
        elif r < 0.55:
            block = "```" + rng.choice(["python", "bash", "js", ""]) + "\n"
            block += rng.choice([gen_python, gen_shell, gen_js])(sp, rng.randint(100, 500))
            block += "\n```"
        elif r < 0.65:
            block = f"See [{sp.comment_text()}]({sp.url()}) and `{sp.ident()}()` for **details**."
        elif r < 0.72:
            cols = [sp.ident() for _ in range(rng.randint(2, 4))]
            rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            for _ in range(rng.randint(2, 5)):
                rows.append("| " + " | ".join(sp.word() for _ in cols) + " |")
            block = "\n".join(rows)
        else:
            block = sp.paragraph()
        out.append(block)
        total += len(block) + 2
    return "\n\n".join(out)


def _py_expr(sp: Sampler, depth: int = 0) -> str:
    rng = sp.rng
    r = rng.random()
    if r < 0.25 or depth > 2:
        return rng.choice([sp.ident(), "self." + sp.ident(), rng.choice(PY_KEYWORDS_BUILTINS)])
    if r < 0.4:
        return repr(sp.string_literal())
    if r < 0.5:
        return str(rng.choice([0, 1, 2, -1, 10, 100, 255, 1024, 3.14, 0.5, 65536]))
    if r < 0.75:
        args = ", ".join(_py_expr(sp, depth + 1) for _ in range(rng.randint(0, 3)))
        obj = rng.choice(["", "self.", sp.ident() + ".", "os.path.", "np."])
        return f"{obj}{sp.ident()}({args})"
    if r < 0.85:
        op = rng.choice(["+", "-", "*", "==", "!=", "<", ">=", "and", "or", "in", "is not", "%"])
        return f"{_py_expr(sp, depth + 1)} {op} {_py_expr(sp, depth + 1)}"
    if r < 0.92:
        return "[" + ", ".join(_py_expr(sp, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    return (
        "{"
        + ", ".join(
            f"{sp.string_literal()!r}: {_py_expr(sp, depth + 1)}" for _ in range(rng.randint(0, 3))
        )
        + "}"
    )


def _py_block(sp: Sampler, indent: int, lines: list[str], budget: int) -> None:
    rng = sp.rng
    pad = " " * indent
    for _ in range(rng.randint(1, 6)):
        if len(lines) > budget:
            return
        r = rng.random()
        if r < 0.35:
            target = rng.choice([sp.ident(), "self." + sp.ident(), f"{sp.ident()}, {sp.ident()}"])
            lines.append(f"{pad}{target} = {_py_expr(sp)}")
        elif r < 0.45:
            lines.append(f"{pad}# {sp.comment_text()}")
        elif r < 0.55 and indent < 16:
            lines.append(f"{pad}if {_py_expr(sp)}:")
            _py_block(sp, indent + 4, lines, budget)
            if rng.random() < 0.3:
                lines.append(f"{pad}else:")
                _py_block(sp, indent + 4, lines, budget)
        elif r < 0.63 and indent < 16:
            lines.append(f"{pad}for {sp.ident()} in {_py_expr(sp)}:")
            _py_block(sp, indent + 4, lines, budget)
        elif r < 0.68 and indent < 16:
            lines.append(f"{pad}try:")
            _py_block(sp, indent + 4, lines, budget)
            caught = rng.choice(["ValueError", "KeyError", "OSError", "Exception"])
            lines.append(f"{pad}except {caught} as exc:")
            lines.append(
                f"{pad}    raise {sp.ident('pascal')}Error({sp.comment_text()!r}) from exc"
            )
        elif r < 0.78:
            lines.append(f"{pad}{_py_expr(sp)}")
        elif r < 0.83:
            lines.append(f"{pad}self.assertEqual({_py_expr(sp)}, {_py_expr(sp)})")
        elif r < 0.88:
            lines.append(f'{pad}print(f"{sp.comment_text()}: {{{sp.ident()}}}")')
        else:
            lines.append(f"{pad}return {_py_expr(sp)}")
        if rng.random() < 0.15:
            lines.append("")


def gen_python(sp: Sampler, size: int) -> str:
    rng = sp.rng
    lines: list[str] = []
    if rng.random() < 0.5:
        lines.append(f'"""{sp.sentence()}\n\n{sp.paragraph()}\n"""')
        lines.append("")
        for _ in range(rng.randint(1, 5)):
            lines.append(
                rng.choice(
                    [
                        f"import {sp.ident('flat')}",
                        f"from {sp.ident('flat')}.{sp.ident('flat')} import {sp.ident()}",
                    ]
                )
            )
        lines.append("")
    while sum(map(len, lines)) < size:
        if rng.random() < 0.3:
            base = rng.choice(["object", "Exception", sp.ident("pascal")])
            lines.append(f"class {sp.ident('pascal')}({base}):")
            indent = 4
        else:
            indent = rng.choice([0, 4])
        args = ", ".join(
            (["self"] if indent else []) + [sp.ident() for _ in range(rng.randint(0, 3))]
        )
        lines.append(f"{' ' * indent}def {sp.ident()}({args}):")
        if rng.random() < 0.5:
            lines.append(f'{" " * (indent + 4)}"""{sp.sentence()}"""')
        _py_block(sp, indent + 4, lines, len(lines) + 30)
        lines.append("")
    return "\n".join(lines)


def gen_js(sp: Sampler, size: int) -> str:
    rng = sp.rng
    cc = partial(sp.ident, "camel")
    lines: list[str] = []
    while sum(map(len, lines)) < size:
        name = sp.ident("camel")
        args = ", ".join(sp.ident("camel") for _ in range(rng.randint(0, 3)))
        lines.append(
            rng.choice(
                [
                    f"function {name}({args}) {{",
                    f"const {name} = ({args}) => {{",
                    f"export async function {name}({args}) {{",
                ]
            )
        )
        for _ in range(rng.randint(2, 8)):
            r = rng.random()
            ind = "  "
            if r < 0.3:
                lines.append(f"{ind}const {cc()} = {cc()}.{cc()}({cc()});")
            elif r < 0.45:
                other = rng.choice(["null", "undefined", "0", repr(sp.word())])
                lines.append(f"{ind}if ({cc()} === {other}) {{")
                lines.append(f"{ind}  return {rng.choice(['null', 'false', '[]', '{}'])};")
                lines.append(f"{ind}}}")
            elif r < 0.55:
                lines.append(f"{ind}// {sp.comment_text()}")
            elif r < 0.7:
                lines.append(f"{ind}console.log(`{sp.comment_text()} ${{{cc()}}}`);")
            elif r < 0.8:
                lines.append(f"{ind}const {{ {cc()}, {cc()} }} = await fetch('{sp.url()}');")
            elif r < 0.9:
                fields = f"{cc()}: {rng.randint(0, 500)}, {cc()}: '{sp.word()}'"
                lines.append(f"{ind}let {cc()} = {{ {fields} }};")
            else:
                lines.append(f"{ind}return {cc()}.map((x) => x.{cc()});")
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def gen_go(sp: Sampler, size: int) -> str:
    rng = sp.rng
    lines = [f"package {sp.ident('flat')}", "", "import (", '\t"fmt"', '\t"os"', ")", ""]
    while sum(map(len, lines)) < size:
        if rng.random() < 0.3:
            lines.append(f"type {sp.ident('pascal')} struct {{")
            for _ in range(rng.randint(2, 5)):
                field = sp.ident("pascal")
                tag = sp.ident()
                kind = rng.choice(["string", "int", "bool", "[]byte", "*Config", "map[string]int"])
                lines.append(f'\t{field} {kind} `json:"{tag}"`')
            lines.append("}")
            lines.append("")
        recv = f"({sp.ident('flat')[:1]} *{sp.ident('pascal')}) " if rng.random() < 0.5 else ""
        lines.append(f"func {recv}{sp.ident('pascal')}({sp.ident('camel')} string) error {{")
        for _ in range(rng.randint(2, 7)):
            r = rng.random()
            if r < 0.3:
                call = f"{sp.ident('flat')}.{sp.ident('pascal')}({sp.ident('camel')})"
                lines.append(f"\t{sp.ident('camel')}, err := {call}")
                lines.append("\tif err != nil {")
                lines.append(f'\t\treturn fmt.Errorf("{sp.comment_text()}: %w", err)')
                lines.append("\t}")
            elif r < 0.45:
                lines.append(f"\t// {sp.comment_text()}")
            elif r < 0.6:
                lines.append(f"\tfor i := 0; i < len({sp.ident('camel')}); i++ {{")
                lines.append(f"\t\t{sp.ident('camel')} += {sp.ident('camel')}[i]")
                lines.append("\t}")
            elif r < 0.7:
                lines.append(f'\tfmt.Println("{sp.comment_text()}", {sp.ident("camel")})')
            elif r < 0.85:
                _go_table(sp, lines)
            else:
                lines.append(f"\t{sp.ident('camel')} := {rng.randint(0, 4096)}")
        lines.append("\treturn nil")
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def _go_table(sp: Sampler, lines: list[str]) -> None:
    """A table of cases as Go tests write them: composite literals nested three and
    four tabs deep (runs of tabs are one token each in both tokenizers)."""
    rng = sp.rng
    fields = [sp.ident("camel") for _ in range(rng.randint(2, 3))]
    inner = sp.ident("pascal")
    lines.append(f"\t{sp.ident('camel')} := []struct {{")
    for field in fields:
        lines.append(f"\t\t{field} string")
    lines.append(f"\t\t{sp.ident('camel')} {inner}")
    lines.append("\t}{")
    for _ in range(rng.randint(1, 3)):
        lines.append("\t\t{")
        for field in fields:
            lines.append(f'\t\t\t{field}: "{sp.comment_text()[:30]}",')
        lines.append(f"\t\t\t{sp.ident('camel')}: {inner}{{")
        for _ in range(rng.randint(1, 3)):
            value = rng.choice([f'"{sp.word()}"', str(rng.randint(0, 999)), "true"])
            lines.append(f"\t\t\t\t{sp.ident('pascal')}:    {value},")
        lines.append("\t\t\t},")
        lines.append("\t\t},")
    lines.append("\t}")


def gen_shell(sp: Sampler, size: int) -> str:
    rng = sp.rng
    lines: list[str] = []
    while sum(map(len, lines)) < size:
        r = rng.random()
        if r < 0.25:
            cmd = rng.choice(
                [
                    "ls -la",
                    "cat",
                    "grep -rn",
                    "find . -name",
                    "cd",
                    "mkdir -p",
                    "rm -rf",
                    "cp -r",
                    "python",
                    "pip install",
                    "git diff",
                    "chmod +x",
                ]
            )
            lines.append(f"$ {cmd} {sp.path()}")
        elif r < 0.4:
            lines.append(f'{sp.ident("upper")}="{sp.path()}"')
        elif r < 0.5:
            lines.append(f"# {sp.comment_text()}")
        elif r < 0.6:
            lines.append(f'if [ -f "${sp.ident("upper")}" ]; then')
            lines.append(f'  echo "{sp.comment_text()}"')
            lines.append("fi")
        elif r < 0.75:
            perms = rng.choice(["-rw-r--r--", "drwxr-xr-x", "-rwxr-xr-x"])
            lines.append(
                f"{perms}  1 root root {rng.randint(0, 99999):>6} {rng.choice(NAMES[108:120])}"
                f" {rng.randint(1, 28):>2} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} "
                f"{sp.path().split('/')[-1] or sp.ident()}"
            )
        elif r < 0.85:
            lines.append(
                f"{sp.ident('kebab')} --{sp.ident('kebab')}={rng.randint(1, 64)} | tee {sp.path()}"
            )
        else:
            lines.append(f'for f in {sp.path()}/*; do echo "$f"; done')
    return "\n".join(lines)


def _json_value(sp: Sampler, depth: int) -> object:
    rng = sp.rng
    r = rng.random()
    if depth < 3 and r < 0.15:
        return {
            sp.ident(rng.choice(["snake", "camel"])): _json_value(sp, depth + 1)
            for _ in range(rng.randint(1, 6))
        }
    if depth < 3 and r < 0.25:
        return [_json_value(sp, depth + 1) for _ in range(rng.randint(0, 5))]
    if r < 0.35:
        return rng.randint(-1000, 10 ** rng.randint(1, 10))
    if r < 0.42:
        return round(rng.uniform(-1000, 1000), rng.randint(1, 8))
    if r < 0.47:
        return rng.choice([True, False, None])
    if r < 0.6:
        return sp.sentence()
    if r < 0.67:
        return sp.ident(rng.choice(["snake", "kebab", "camel"]))
    if r < 0.72:
        return sp.path()
    if r < 0.75:
        return sp.url()
    if r < 0.78:
        return sp.uuid()
    if r < 0.81:
        return sp.timestamp()
    if r < 0.83:
        return sp.hex(rng.choice([7, 12, 40, 64]))
    if r < 0.85:
        return sp.random_token()
    gen = rng.choice([gen_python, gen_shell, gen_log, gen_prose, gen_markdown, gen_dialogue])
    return gen(sp, rng.randint(60, 800))


def gen_json(sp: Sampler, size: int) -> str:
    rng = sp.rng
    if rng.random() < 0.4:
        # a trajectory / chat log: a list of records with long string fields
        records: list[object] = []
        while len(json.dumps(records)) < size:
            records.append(
                {
                    "role": rng.choice(["user", "assistant", "tool", "system"]),
                    "content": _json_value(sp, 3),
                    rng.choice(["thought", "action", "observation", "name"]): _json_value(sp, 3),
                }
            )
        doc: object = records
    else:
        obj: dict[str, object] = {}
        while len(json.dumps(obj)) < size:
            obj[sp.ident(rng.choice(["snake", "camel"]))] = _json_value(sp, 0)
        doc = obj
    indent = rng.choice([None, None, 2, 2, 4])
    text = json.dumps(doc, indent=indent, ensure_ascii=rng.random() < 0.3)
    return text


def gen_log(sp: Sampler, size: int) -> str:
    rng = sp.rng
    lines: list[str] = []
    style = rng.randint(0, 3)
    while sum(map(len, lines)) < size:
        level = rng.choice(["INFO", "DEBUG", "WARNING", "ERROR", "INFO", "INFO"])
        if style == 0:
            where = f"{sp.ident('flat')}.{sp.ident('flat')}"
            line = f"{sp.timestamp()} {level} [{where}] {sp.comment_text()}"
            if rng.random() < 0.5:
                line += (
                    f" {sp.ident()}={rng.choice([str(rng.randint(0, 9999)), sp.hex(8), sp.word()])}"
                )
        elif style == 1:
            ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            when = (
                f"{rng.randint(1, 28):02d}/Mar/2024:{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000"
            )
            line = (
                f'{ip} - - [{when}] "GET {sp.path()} HTTP/1.1" '
                f"{rng.choice([200, 200, 304, 404, 500])} {rng.randint(0, 99999)}"
            )
        elif style == 2:
            line = f'  File "{sp.path()}", line {rng.randint(1, 2000)}, in {sp.ident()}'
            if rng.random() < 0.5:
                line += f"\n    {_py_expr(sp)}"
        else:
            stamp = f"[{rng.uniform(0, 9999):10.6f}]"
            line = f"{stamp} {sp.ident('flat')}: {sp.comment_text()} ({sp.hex(8)})"
        lines.append(line)
    return "\n".join(lines)


def _foreign_sentences(sp: Sampler, pool: list[str], noise: str, joiner: str) -> str:
    """Real sentences of one language, now and then with a made-up name from ``noise``."""
    rng = sp.rng
    sentence = rng.choice(pool)
    if noise and rng.random() < 0.2:
        name = "".join(rng.choice(noise) for _ in range(rng.randint(2, 5)))
        cut = rng.randint(0, len(sentence) - 1)
        sentence = sentence[:cut] + name + sentence[cut:]
    return sentence + joiner


def gen_non_ascii(sp: Sampler, size: int) -> str:
    rng = sp.rng
    kind = rng.randint(0, 6)
    out: list[str] = []
    total = 0
    while total < size:
        if kind == 0:  # Spanish, French, German, Portuguese; or English with accented words
            if rng.random() < 0.7:
                piece = _foreign_sentences(sp, SENTENCES["latin"], "", " ")
            else:
                words = [
                    rng.choice(ACCENTED_WORDS) if rng.random() < 0.35 else sp.word()
                    for _ in range(rng.randint(4, 16))
                ]
                piece = " ".join(words).capitalize() + ". "
        elif kind == 1:  # Russian, Greek
            piece = _foreign_sentences(sp, SENTENCES["cyrillic_greek"], "", " ")
        elif kind == 2:  # Chinese
            piece = _foreign_sentences(sp, SENTENCES["zh"], CJK_CHARS, "")
        elif kind == 3:  # Japanese
            piece = _foreign_sentences(sp, SENTENCES["ja"], KATAKANA, "")
        elif kind == 4:  # Korean
            piece = _foreign_sentences(sp, SENTENCES["ko"], HANGUL, " ")
        elif kind == 5:  # Arabic, Hindi
            piece = _foreign_sentences(sp, SENTENCES["ar_hi"], "", " ")
        else:  # English chat with emoji and typographic punctuation, independently
            words = sp.sentence(casual=True).split(" ")
            if rng.random() < 0.4:
                n_emoji = rng.choices([1, 2, 3], [70, 20, 10])[0]
                emoji = "".join(rng.choice(EMOJI) for _ in range(n_emoji))
                words.insert(rng.randint(1, len(words)), emoji)
            if rng.random() < 0.3:
                words.insert(rng.randint(1, len(words)), rng.choice(TYPOGRAPHIC))
            piece = " ".join(words)
            if rng.random() < 0.3:
                piece = piece.replace("'", "’")
            if rng.random() < 0.15:
                piece = f"“{piece}”"
            piece += " "
        if kind in (2, 3) and rng.random() < 0.1:  # English terms inside CJK text
            piece += sp.ident(rng.choice(["snake", "flat", "pascal"])) + " "
        out.append(piece)
        total += len(piece)
        if rng.random() < 0.15:
            out.append("\n")
    return "".join(out).strip()


GENERATORS: dict[str, tuple[float, Callable[[Sampler, int], str]]] = {
    "prose": (0.14, gen_prose),
    "dialogue": (0.12, gen_dialogue),
    "markdown": (0.07, gen_markdown),
    "python": (0.15, gen_python),
    "javascript": (0.06, gen_js),
    "go": (0.05, gen_go),
    "shell": (0.05, gen_shell),
    "json": (0.20, gen_json),
    "log": (0.07, gen_log),
    "non_ascii": (0.09, gen_non_ascii),
}


def make_corpus(seed: int, n_docs: int) -> list[tuple[str, str]]:
    """``n_docs`` (generator name, text) pairs, deterministic for a seed."""
    rng = random.Random(seed)
    sp = Sampler(rng)
    names = list(GENERATORS)
    weights = [GENERATORS[n][0] for n in names]
    corpus: list[tuple[str, str]] = []
    for _ in range(n_docs):
        name = rng.choices(names, weights)[0]
        size = int(math.exp(rng.uniform(math.log(200), math.log(5000))))
        text = GENERATORS[name][1](sp, size)
        if len(text) > 2 * size:  # keep sizes in range: cut at a line end
            cut = text.rfind("\n", 0, 2 * size)
            text = text[: cut if cut > size // 2 else 2 * size]
        if text.strip():
            corpus.append((name, text))
    return corpus


# --------------------------------------------------------------------------- fitting


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve ``matrix @ x = rhs`` by Gaussian elimination with partial pivoting."""
    n = len(rhs)
    a = [[*row, rhs[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            raise ValueError("singular normal equations")
        a[col], a[pivot] = a[pivot], a[col]
        inv = 1.0 / a[col][col]
        for r in range(col + 1, n):
            factor = a[r][col] * inv
            if factor:
                row_r, row_c = a[r], a[col]
                for k in range(col, n + 1):
                    row_r[k] -= factor * row_c[k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][k] * x[k] for k in range(r + 1, n))) / a[r][r]
    return x


def weighted_least_squares(
    rows: list[list[int]], targets: list[int], weights: list[float], ridge: float
) -> list[float]:
    """Minimise sum w_i (y_i - x_i.c)^2 + ridge * sum_j scale_j c_j^2."""
    n = len(rows[0])
    ata = [[0.0] * n for _ in range(n)]
    aty = [0.0] * n
    for x, y, w in zip(rows, targets, weights, strict=True):
        nz = [(j, v) for j, v in enumerate(x) if v]
        for j, vj in nz:
            wv = w * vj
            aty[j] += wv * y
            row = ata[j]
            for k, vk in nz:
                row[k] += wv * vk
    for j in range(n):
        # ridge relative to the feature's own scale; a feature never seen stays at zero
        ata[j][j] += ridge * (ata[j][j] or 1.0)
    return solve(ata, aty)


def predict(coef: list[float], x: list[int]) -> float:
    return sum(c * v for c, v in zip(coef, x, strict=True))


def fit(rows: list[list[int]], targets: list[int], iterations: int = 30) -> list[float]:
    """Least mean absolute percentage error by iteratively reweighted least squares."""
    weights = [1.0 / (y * y) for y in targets]  # relative squared error to start
    coef = weighted_least_squares(rows, targets, weights, ridge=1e-4)
    for _ in range(iterations):
        weights = []
        for x, y in zip(rows, targets, strict=True):
            rel = abs(predict(coef, x) - y) / y
            weights.append(1.0 / (y * y * max(rel, 0.005)))
        coef = weighted_least_squares(rows, targets, weights, ridge=1e-4)
    return coef


def mape_by_group(
    coef: list[float], corpus: list[tuple[str, str]], rows: list[list[int]], targets: list[int]
) -> dict[str, float]:
    errors: dict[str, list[float]] = {}
    for (name, _), x, y in zip(corpus, rows, targets, strict=True):
        estimate = max(1, round(predict(coef, x)))
        errors.setdefault(name, []).append(abs(estimate - y) / y)
    return {name: 100.0 * sum(e) / len(e) for name, e in sorted(errors.items())}


# What real text is collected for the Claude fit: code, prose, reStructuredText, JSON,
# C headers (this machine's Python standard library and /usr/include), and Go,
# TypeScript, JavaScript, Rust and markdown (from repository snapshots given as --real).
REAL_SUFFIXES = (".py", ".txt", ".rst", ".md", ".json", ".html", ".cfg", ".toml")
REAL_SUFFIXES += (".c", ".h", ".go", ".ts", ".js", ".rs")
# Code as agents read it (numbered listings are made of these too); tab-indented C and
# Go read differently from Python's spaces.
REAL_CODE = (".py", ".c", ".h", ".go", ".ts", ".js", ".rs")


def real_corpus(roots: list[Path], seed: int, n_docs: int) -> list[tuple[str, str]]:
    """``n_docs`` pieces of real text (200 to 5,000 characters, cut at line ends) from
    files under ``roots``, named by their kind; deterministic for a seed."""
    files = sorted(
        p for root in roots if root.exists() for p in root.rglob("*") if p.suffix in REAL_SUFFIXES
    )
    rng = random.Random(seed)
    rng.shuffle(files)
    corpus: list[tuple[str, str]] = []
    for path in files:
        if len(corpus) >= n_docs:
            break
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        size = int(math.exp(rng.uniform(math.log(200), math.log(5000))))
        start = rng.randrange(max(1, len(text) - size))
        start = text.find("\n", start) + 1 if start else 0
        piece = text[start : start + size]
        cut = piece.rfind("\n")
        piece = piece[: cut if cut > size // 2 else size]
        if piece.strip():
            kind = (
                "real_code"
                if path.suffix in REAL_CODE
                else ("real_json" if path.suffix == ".json" else "real_text")
            )
            corpus.append((kind, piece))
    return corpus


def _keep_counted(
    docs: list[tuple[str, str]], x: list[list[int]], y: list[int]
) -> tuple[list[tuple[str, str]], list[list[int]], list[int]]:
    kept = [i for i, tokens in enumerate(y) if tokens > 0]
    return [docs[i] for i in kept], [x[i] for i in kept], [y[i] for i in kept]


def numbered(text: str, first: int = 1) -> str:
    """``text`` as Claude Code's Read tool shows a file: each line after its number
    (right-aligned in six columns) and an arrow."""
    return "\n".join(f"{n:>6}\u2192{line}" for n, line in enumerate(text.split("\n"), first))


def listing_corpus(docs: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """File listings as agents read them: numbered lines of code, JSON, logs and text."""
    rng = random.Random(seed)
    out = []
    for name, text in docs:
        if name in ("python", "javascript", "go", "shell", "json", "log", "markdown", "real_code"):
            out.append(
                ("numbered_" + name.removeprefix("real_"), numbered(text, rng.randint(1, 400)))
            )
    return out


def claude_counter() -> Callable[[str], int]:
    """ctok's reconstruction of Claude's tokenizer (Python 3.12+, ``ctxbudget[claude]``)."""
    from ctxbudget.tokens.counters import get_counter

    return get_counter("claude").count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--docs", type=int, default=DEFAULT_DOCS)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--target",
        choices=("o200k_base", "claude"),
        default="o200k_base",
        help="what to fit: exact o200k_base, or Claude's tokenizer through ctok "
        "(needs Python 3.12+ and ctok; adds real text from --real)",
    )
    parser.add_argument(
        "--real",
        type=Path,
        action="append",
        help="a folder of real text to add to the corpus (default with --target claude: "
        "this Python's standard library and /usr/include: Python, C headers)",
    )
    parser.add_argument(
        "--real-source",
        action="append",
        default=[],
        metavar="TEXT",
        help="where a --real folder came from, for the coefficients' comment (e.g. "
        "'github:spf13/cobra@adbc8813901b, git archive'): a temporary path says nothing",
    )
    parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    from ctxbudget.tokens.counters import get_counter
    from ctxbudget.tokens.estimate import FEATURES, features

    tiktoken_version = version("tiktoken")

    started = time.perf_counter()
    train = make_corpus(args.seed, args.docs)
    valid = make_corpus(args.seed + 1, args.docs // 2)
    if args.target == "claude":
        count = claude_counter()
        roots = args.real or [Path(sysconfig.get_paths()["stdlib"]), Path("/usr/include")]
        real = real_corpus(roots, args.seed, args.docs // 2)
        train += real[: len(real) * 2 // 3]
        valid += real[len(real) * 2 // 3 :]
        # agents read files with numbered lines: a kind of its own for Claude's tokenizer
        train += listing_corpus(train[: len(train) // 3], args.seed)
        valid += listing_corpus(valid[: len(valid) // 3], args.seed + 1)
        out = args.out or OUT.with_name("estimate_claude_coefficients.json")
    else:
        count = get_counter("o200k_base").count
        out = args.out or OUT
    x_train = [features(text) for _, text in train]
    y_train = [count(text) for _, text in train]
    x_valid = [features(text) for _, text in valid]
    y_valid = [count(text) for _, text in valid]
    # a document the tokenizer gives no tokens (whitespace its framing absorbs) says
    # nothing about the rates
    train, x_train, y_train = _keep_counted(train, x_train, y_train)
    valid, x_valid, y_valid = _keep_counted(valid, x_valid, y_valid)
    chars = sum(len(t) for _, t in train)
    print(f"corpus: {len(train)} training documents ({chars:,} chars), {len(valid)} validation")

    coef = fit(x_train, y_train)
    train_err = mape_by_group(coef, train, x_train, y_train)
    valid_err = mape_by_group(coef, valid, x_valid, y_valid)
    print(f"{'generator':<12}{'train MAPE':>12}{'valid MAPE':>12}")
    for name in valid_err:
        print(f"{name:<12}{train_err.get(name, float('nan')):>11.2f}%{valid_err[name]:>11.2f}%")
    overall = sum(
        abs(max(1, round(predict(coef, x))) - y) / y for x, y in zip(x_valid, y_valid, strict=True)
    ) / len(y_valid)
    print(f"validation MAPE overall: {100 * overall:.2f}%")
    for name, c in zip(FEATURES, coef, strict=True):
        print(f"  {name:<20}{c:+.4f}")

    target = "ctok " + version("ctok") if args.target == "claude" else "o200k_base"
    corpus = (
        "a synthetic corpus and real text ("
        + ", ".join([str(r) for r in roots] + args.real_source)
        + ")"
        if args.target == "claude"
        else "a synthetic corpus"
    )
    result = {
        "comment": (
            "Coefficients of the estimate counter (ctxbudget.tokens.estimate), fitted to "
            f"{target} counts of {corpus} by: python tools/fit_estimator.py "
            f"--target {args.target} --seed {args.seed} --docs {args.docs}"
            + "".join(f" --real {r}" for r in (args.real or []))
        ),
        "target": target,
        "seed": args.seed,
        "documents": len(train),
        "validation_mape_pct": {k: round(v, 2) for k, v in valid_err.items()},
        "tiktoken_version": tiktoken_version,
        "coefficients": {name: round(c, 6) for name, c in zip(FEATURES, coef, strict=True)},
    }
    if not args.dry_run:
        out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        print(f"wrote {out}")
    print(f"({time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
