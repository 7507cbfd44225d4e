"""Hand-written web pages for kurate's demo WARC (data only; see :mod:`kurate.tasks.demo_warc`).

Every page is a :class:`DemoPage`: the URL, the exact HTTP body bytes, the HTTP status and
Content-Type, and a short ``kind`` label saying what the page is there to exercise
(``article-de``, ``boilerplate``, ``spam``, ``latin1``, ``redirect``, ...).  All article texts
were written for this project; every site, person and place in them is invented, and every
URL uses an example domain.

The module holds only data plus the little HTML templating needed to wrap an article in a
realistic page (cookie banner, navigation, sidebar, footer).  It imports nothing outside the
standard library.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["DemoPage", "demo_pages", "BULK_VOCABULARY"]


@dataclass(frozen=True)
class DemoPage:
    """One fetched URL as it will appear in a WARC response record.

    ``body`` is the HTTP entity exactly as sent (already encoded); ``content_type`` is the
    HTTP Content-Type header (``None`` leaves the header out).  The keyword-only fields are
    for tests: ``lang`` is the language of the main text, ``main_text`` the text a good
    extractor should find (paragraphs separated by blank lines, empty where there is none),
    ``duplicate_of`` the URL of the page this one copies, and ``extra_headers`` further HTTP
    response headers such as ``Location``.
    """

    url: str
    body: bytes
    status: int = 200
    content_type: str | None = "text/html; charset=utf-8"
    kind: str = field(kw_only=True)
    lang: str | None = field(default=None, kw_only=True)
    main_text: str = field(default="", kw_only=True)
    duplicate_of: str | None = field(default=None, kw_only=True)
    extra_headers: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)


# ---------------------------------------------------------------------------------------------
# Article texts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Article:
    title: str
    byline: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def replace(self, old: str, new: str) -> "_Article":
        """Copy with one phrase changed; the phrase must occur exactly once."""
        joined = "\x00".join(self.paragraphs)
        if joined.count(old) != 1:
            raise ValueError(f"phrase {old!r} must occur exactly once in {self.title!r}")
        return _Article(self.title, self.byline, tuple(joined.replace(old, new).split("\x00")))


DE_STADTGESCHICHTE = _Article(
    title="Lindenfurt: Vom Fährdorf zur Brückenstadt",
    byline="Von Anna Berger | 14.08.2026",
    paragraphs=(
        "Wer heute über die steinerne Brücke in die Altstadt von Lindenfurt spaziert, ahnt kaum, "
        "dass an dieser Stelle über Jahrhunderte nur eine schmale Fähre verkehrte. Die erste "
        "schriftliche Erwähnung des Ortes stammt aus einer Urkunde des Jahres 1147, in der sich "
        "ein Kloster seine Rechte an einer „Furt bei den Linden“ bestätigen ließ. Aus diesem "
        "unscheinbaren Flussübergang sollte sich im Lauf der Zeit eine der lebhaftesten "
        "Handelsstädte der Region entwickeln.",
        "Entscheidend für den Aufstieg war die Lage an der alten Salzstraße. Fuhrleute, die ihre "
        "Wagen von den Sudhäusern im Süden zu den Märkten im Norden lenkten, mussten hier den "
        "Fluss überqueren und legten oft eine Rast ein. Gasthöfe, Schmieden und Lagerhäuser "
        "entstanden entlang des Ufers, und schon um 1300 erhielt Lindenfurt das Marktrecht. Der "
        "wöchentliche Markt auf dem heutigen Rathausplatz findet, mit kurzen Unterbrechungen, "
        "bis in die Gegenwart statt.",
        "Der Dreißigjährige Krieg traf die Stadt hart. Zweimal wurde sie von durchziehenden "
        "Truppen geplündert, und ein Großbrand im Sommer 1634 zerstörte fast die Hälfte der "
        "Fachwerkhäuser. Die Chronik des Stadtschreibers berichtet, dass nach dem Krieg kaum noch "
        "vierhundert Menschen in Lindenfurt lebten. Erst mit dem Aufschwung der Tuchmacherei im "
        "18. Jahrhundert kehrte ein bescheidener Wohlstand zurück.",
        "Den eigentlichen Wendepunkt markiert das Jahr 1838, als die Bürgerschaft nach langem "
        "Streit den Bau einer festen Brücke beschloss. Die sieben Bögen aus rotem Sandstein "
        "kosteten mehr als das Doppelte der ursprünglich veranschlagten Summe, doch sie "
        "veränderten das Leben der Stadt grundlegend. Die Fähre wurde überflüssig, der Verkehr "
        "nahm zu, und wenige Jahrzehnte später hielt auch die Eisenbahn an einem neuen Bahnhof "
        "jenseits des Flusses.",
        "Im 20. Jahrhundert wuchs Lindenfurt über seine mittelalterlichen Grenzen hinaus. Neue "
        "Wohnviertel entstanden auf den früheren Obstwiesen, und in den ehemaligen Tuchfabriken "
        "siedelten sich Druckereien und später kleine Elektronikbetriebe an. Die Altstadt blieb "
        "dabei erstaunlich gut erhalten, weil der Stadtrat schon in den 1970er-Jahren eine "
        "strenge Gestaltungssatzung erließ.",
        "Heute erinnert vor allem das kleine Museum im alten Zollhaus an die Geschichte der Furt. "
        "Dort sind ein Modell der historischen Fähre, Werkzeuge der Tuchmacher und eine Kopie der "
        "Urkunde von 1147 zu sehen. Wer mehr erfahren möchte, kann sich jeden ersten Sonntag im "
        "Monat einer Führung anschließen, die an der Brücke beginnt und am Marktplatz endet.",
    ),
)

DE_REZEPT = _Article(
    title="Apfelstrudel mit selbst gezogenem Teig: Eine Anleitung für Geduldige",
    byline="Von Markus Reinhold | 02.09.2026",
    paragraphs=(
        "Ein guter Apfelstrudel braucht vor allem Zeit und ein wenig Mut. Viele greifen zu "
        "fertigem Blätterteig, doch der klassische Strudelteig ist einfacher, als sein Ruf "
        "vermuten lässt. Man benötigt lediglich Mehl, Wasser, etwas Öl und eine Prise Salz. Das "
        "Geheimnis liegt im Ruhen und im vorsichtigen Ausziehen des Teigs, bis man durch ihn "
        "hindurch eine Zeitung lesen kann.",
        "Für den Teig verknetet man 250 Gramm Weizenmehl mit 125 Millilitern lauwarmem Wasser, "
        "drei Esslöffeln Öl und einer Prise Salz etwa zehn Minuten lang, bis er glatt und "
        "geschmeidig ist. Anschließend wird er zu einer Kugel geformt, dünn mit Öl bestrichen und "
        "zugedeckt mindestens eine halbe Stunde bei Zimmertemperatur ruhen gelassen. In dieser "
        "Zeit entspannt sich das Klebereiweiß, und der Teig lässt sich später deutlich leichter "
        "dehnen.",
        "Währenddessen bereitet man die Füllung vor. Ein Kilogramm säuerliche Äpfel, etwa "
        "Boskop, wird geschält, entkernt und in dünne Scheiben geschnitten. Dazu kommen 80 Gramm "
        "Zucker, ein Teelöffel Zimt, eine Handvoll Rosinen und der Saft einer halben Zitrone. In "
        "einer Pfanne röstet man außerdem 60 Gramm Semmelbrösel in etwas Butter goldbraun; sie "
        "saugen später den austretenden Saft auf und verhindern, dass der Boden durchweicht.",
        "Zum Ausziehen legt man ein großes, mit Mehl bestäubtes Küchentuch auf den Tisch. Der "
        "Teig wird zunächst mit dem Nudelholz ausgerollt und dann mit den Handrücken von der "
        "Mitte nach außen gezogen. Kleine Löcher sind kein Drama, denn beim Einrollen verschwinden "
        "sie meist zwischen den Schichten. Die dicken Ränder schneidet man am Ende einfach ab.",
        "Nun verteilt man die Brösel auf dem unteren Drittel des Teigs, gibt die Apfelmischung "
        "darauf und bestreicht den übrigen Teig mit zerlassener Butter. Mithilfe des Tuchs rollt "
        "man den Strudel locker auf, legt ihn mit der Naht nach unten auf ein Backblech und "
        "bestreicht ihn noch einmal mit Butter. Bei 190 Grad Ober- und Unterhitze backt er etwa "
        "40 Minuten, bis die Oberfläche knusprig und goldbraun ist.",
        "Am besten schmeckt der Strudel lauwarm, mit Puderzucker bestäubt und mit einer Kugel "
        "Vanilleeis oder einem Klecks leicht gesüßter Sahne. Reste lassen sich am nächsten Tag "
        "problemlos im Ofen aufbacken; in der Mikrowelle wird der Teig dagegen schnell zäh.",
    ),
)

DE_WISSEN = _Article(
    title="Warum ist der Himmel blau? Lichtstreuung einfach erklärt",
    byline="Von Dr. Sabine Krüger | 21.07.2026",
    paragraphs=(
        "Es ist eine der ältesten Fragen, die Kinder ihren Eltern stellen, und die Antwort ist "
        "überraschend physikalisch: Der Himmel ist blau, weil das Licht der Sonne an den "
        "Molekülen der Luft gestreut wird. Dabei wird nicht jede Farbe gleich stark abgelenkt. "
        "Kurzwelliges blaues Licht wird sehr viel stärker gestreut als langwelliges rotes Licht.",
        "Sonnenlicht erscheint uns weiß, enthält aber alle Farben des Regenbogens. Trifft es auf "
        "die Stickstoff- und Sauerstoffmoleküle der Atmosphäre, die viel kleiner sind als die "
        "Wellenlänge des Lichts, tritt die sogenannte Rayleigh-Streuung auf. Ihre Stärke wächst "
        "mit der vierten Potenz der Frequenz. Blaues Licht mit einer Wellenlänge von etwa 450 "
        "Nanometern wird dadurch mehr als fünfmal so stark gestreut wie rotes Licht bei 700 "
        "Nanometern.",
        "Das gestreute blaue Licht erreicht unser Auge aus allen Richtungen des Himmels, nicht "
        "nur aus der Richtung der Sonne. Deshalb leuchtet das ganze Himmelsgewölbe blau, während "
        "die Sonne selbst leicht gelblich wirkt: Ihr fehlt ein kleiner Teil des blauen Anteils, "
        "der unterwegs zur Seite abgelenkt wurde.",
        "Doch warum ist der Himmel dann nicht violett? Violettes Licht hat eine noch kürzere "
        "Wellenlänge und müsste eigentlich am stärksten gestreut werden. Das geschieht auch, "
        "aber mehrere Effekte wirken zusammen: Die Sonne strahlt weniger Violett als Blau ab, ein "
        "Teil davon wird schon hoch in der Atmosphäre absorbiert, und unsere Augen sind für "
        "Violett deutlich weniger empfindlich. Im Gehirn ergibt die Mischung deshalb das vertraute "
        "Himmelblau.",
        "Bei Sonnenaufgang und Sonnenuntergang muss das Licht einen viel längeren Weg durch die "
        "Atmosphäre zurücklegen. Unterwegs wird so viel Blau herausgestreut, dass vor allem die "
        "gelben, orangen und roten Anteile übrig bleiben. Staub, Rauch oder Vulkanasche in der "
        "Luft können diesen Effekt noch verstärken und für besonders kräftiges Abendrot sorgen.",
        "Auf dem Mond, der keine Atmosphäre besitzt, gibt es diese Streuung nicht. Dort ist der "
        "Himmel selbst am Tag tiefschwarz, wie die Fotos der Apollo-Missionen zeigen. Auf dem "
        "Mars wiederum färbt feiner, rötlicher Staub den Taghimmel eher bräunlich, während die "
        "Sonnenuntergänge dort bläulich erscheinen.",
    ),
)

DE_REGIONAL = _Article(
    title="Neue Buslinie verbindet sieben Dörfer mit der Kreisstadt",
    byline="Von Jonas Petersen | 28.08.2026",
    paragraphs=(
        "Ab dem ersten Oktober fährt im Landkreis eine neue Buslinie, die sieben Dörfer im oberen "
        "Talgrund direkt mit der Kreisstadt verbindet. Die Linie 542 verkehrt werktags im "
        "Stundentakt zwischen sechs und zwanzig Uhr, am Wochenende alle zwei Stunden. Bisher "
        "waren viele der Orte nur mit dem Schulbus oder einem Rufbus erreichbar, der mindestens "
        "eine Stunde vorher bestellt werden musste.",
        "Landrätin Petra Hollmann sprach bei der Vorstellung der Pläne von einem „wichtigen "
        "Schritt für die ländlichen Gemeinden“. Gerade ältere Menschen ohne eigenes Auto seien "
        "bisher auf Nachbarn oder Angehörige angewiesen gewesen, um zum Arzt oder zum Einkaufen "
        "zu kommen. Auch Auszubildende, die in der Kreisstadt arbeiten, sollen von der neuen "
        "Verbindung profitieren.",
        "Die Kosten für den Betrieb belaufen sich nach Angaben der Kreisverwaltung auf rund "
        "480.000 Euro im Jahr. Etwa die Hälfte davon übernimmt das Land im Rahmen eines "
        "Förderprogramms für den Nahverkehr im ländlichen Raum. Der Kreistag hatte dem Projekt im "
        "Frühjahr mit großer Mehrheit zugestimmt, lediglich zwei Fraktionen enthielten sich.",
        "Eingesetzt werden zunächst drei kleinere Busse mit jeweils 30 Sitzplätzen, die über eine "
        "Rampe für Rollstühle und Kinderwagen verfügen. An mehreren Haltestellen werden derzeit "
        "noch Wartehäuschen aufgebaut und die Bordsteine erhöht, damit der Einstieg ohne Stufe "
        "möglich ist. Die Arbeiten sollen bis Ende September abgeschlossen sein.",
        "In den Dörfern wird die Nachricht überwiegend positiv aufgenommen. „Endlich kann ich "
        "wieder selbst in die Stadt fahren, wann ich will“, sagt eine 78-jährige Bewohnerin aus "
        "Oberau. Der Ortsvorsteher von Kleinhausen mahnt allerdings, dass der Takt am Abend zu "
        "dünn sei, und hofft auf eine Ausweitung, falls die Fahrgastzahlen stimmen.",
        "Die Kreisverwaltung will die Nutzung im ersten Jahr genau beobachten. Geplant ist eine "
        "Fahrgastzählung im Frühjahr, deren Ergebnisse öffentlich vorgestellt werden sollen. "
        "Fahrpläne liegen ab Mitte September in den Rathäusern aus und sind auch online abrufbar.",
    ),
)

DE_FAHRRAD = _Article(
    title="Fahrradkette reinigen und ölen: So geht es richtig",
    byline="Von Lena Vogt | 05.06.2026",
    paragraphs=(
        "Eine saubere, gut geschmierte Kette ist das einfachste Mittel, damit ein Fahrrad leise "
        "läuft und die Schaltung zuverlässig funktioniert. Trotzdem wird sie von vielen "
        "Radfahrerinnen und Radfahrern vernachlässigt. Dabei genügen ein paar Lappen, eine alte "
        "Zahnbürste und das passende Kettenöl, um den Verschleiß deutlich zu verringern.",
        "Zuerst sollte man prüfen, wie verschmutzt die Kette wirklich ist. Wer mit den Fingern "
        "über die Glieder streicht und schwarze, körnige Rückstände an den Händen hat, sollte "
        "gründlich reinigen. Dazu stellt man das Rad am besten in einen Montageständer oder dreht "
        "es vorsichtig auf Sattel und Lenker. Dann hält man einen trockenen Lappen locker um die "
        "Kette und kurbelt mehrere Umdrehungen rückwärts.",
        "Hartnäckiger Schmutz zwischen den Rollen lässt sich mit der Zahnbürste und etwas "
        "Kettenreiniger oder verdünntem Spülmittel lösen. Aggressive Lösungsmittel wie Benzin "
        "sind dagegen keine gute Idee, weil sie das Fett aus dem Inneren der Kettenglieder "
        "waschen und Dichtungen angreifen können. Auch die Zahnräder der Kassette und die "
        "Schaltröllchen verdienen bei dieser Gelegenheit eine Reinigung.",
        "Nach dem Reinigen muss die Kette vollständig trocknen, bevor sie geölt wird. "
        "Anschließend gibt man auf jedes einzelne Kettenglied einen kleinen Tropfen Öl, während "
        "man langsam rückwärts kurbelt. Viel hilft hier ausdrücklich nicht viel: Überschüssiges "
        "Öl zieht Staub an und bildet schnell eine schmierige Paste, die wie ein Schleifmittel "
        "wirkt.",
        "Nach einigen Minuten Einwirkzeit wischt man die Außenseite der Kette mit einem sauberen "
        "Lappen ab. Das Öl soll im Inneren zwischen Bolzen und Hülsen wirken, nicht außen an den "
        "Laschen kleben. Für nasse Wintermonate eignet sich ein zähes Nassöl, im trockenen Sommer "
        "ist ein dünneres Trockenschmiermittel oft die bessere Wahl.",
        "Wie oft die Kette gepflegt werden sollte, hängt stark vom Fahrstil und vom Wetter ab. Als "
        "Faustregel gilt: nach jeder Regenfahrt kurz abwischen und alle paar hundert Kilometer neu "
        "ölen. Mit einer Kettenverschleißlehre lässt sich außerdem leicht prüfen, ob die Kette "
        "schon gelängt ist und getauscht werden muss, bevor sie auch Ritzel und Kettenblätter "
        "beschädigt.",
    ),
)

DE_ESSAY = _Article(
    title="Langsam ankommen: Warum ich wieder mit dem Zug reise",
    byline="Ein Essay von Friederike Hahn | 30.08.2026",
    paragraphs=(
        "Es gab eine Zeit, in der ich jede Reise in Stunden und Minuten gemessen habe. Der "
        "kürzeste Weg war der beste, und wenn ein Flug eine Stunde schneller war als die Bahn, "
        "stand die Entscheidung fest. Erst nach einem verpassten Anschlussflug und einer Nacht auf "
        "dem Boden eines Flughafens begann ich, diese Rechnung zu hinterfragen.",
        "Im Zug verändert sich das Verhältnis zur Zeit. Die Landschaft zieht nicht als abstrakte "
        "Linie auf einem Bildschirm vorbei, sondern als Abfolge von Feldern, Gewerbegebieten, "
        "Flussläufen und Kleinstädten, deren Namen man nur von Bahnhofsschildern kennt. Man "
        "sieht, wie sich die Architektur langsam verändert, wie die Dächer flacher werden und die "
        "Sprache der Durchsagen wechselt.",
        "Natürlich ist nicht alles romantisch. Es gibt verspätete Verbindungen, überfüllte Wagen "
        "und Klimaanlagen, die entweder gar nicht oder viel zu kräftig arbeiten. Wer mit der Bahn "
        "reist, braucht eine gewisse Gelassenheit und einen Plan B für den Fall, dass der "
        "Anschluss nicht wartet. Doch diese Unwägbarkeiten gehören für mich inzwischen zum Reisen "
        "dazu, so wie früher das Warten am Gepäckband.",
        "Was ich am meisten schätze, sind die Gespräche. Zwischen zwei Städten habe ich mit einem "
        "Winzer über Spätfrost gesprochen, mit einer Studentin über ihre Abschlussarbeit und mit "
        "einem pensionierten Lokführer über die Strecken, die er vierzig Jahre lang gefahren ist. "
        "Im Flugzeug sitzt man nebeneinander, im Zug begegnet man sich.",
        "Und dann ist da das Ankommen. Wer mit dem Zug reist, steigt meistens mitten in der Stadt "
        "aus und nicht in einem Terminal weit draußen. Man tritt aus der Bahnhofshalle, hört die "
        "Straßenbahn, riecht die Bäckerei gegenüber und ist sofort da. Der Übergang von unterwegs "
        "zu dort ist fließend, und vielleicht ist genau das der Grund, warum ich mich nach einer "
        "Zugreise weniger erschöpft fühle.",
        "Ich will niemanden bekehren. Manche Strecken sind mit der Bahn schlicht unpraktisch, und "
        "nicht jeder hat die Zeit für eine zehnstündige Fahrt. Aber ich habe gelernt, dass die "
        "langsame Reise mir etwas zurückgibt, das ich lange übersehen habe: das Gefühl, eine "
        "Strecke tatsächlich zurückgelegt zu haben.",
    ),
)

# Encoded as windows-1252 on the wire: umlauts, sharp s, German quotes, en dash and euro sign
# all exist in that code page (the last three do not exist in ISO-8859-1).
DE_GARTEN_CP1252 = _Article(
    title="Hochbeete im Frühjahr: Was jetzt zu tun ist",
    byline="Von Gärtnerei-Team Möller | 12.03.2026",
    paragraphs=(
        "Sobald der Boden nicht mehr gefroren ist, beginnt für Hobbygärtnerinnen und "
        "Hobbygärtner die schönste Zeit des Jahres. Gerade Hochbeete erwärmen sich im Frühjahr "
        "schneller als gewöhnliche Beete, weshalb man dort oft schon Anfang März mit der Aussaat "
        "beginnen kann.",
        "Zunächst sollte die oberste Erdschicht gelockert und mit reifem Kompost aufgefüllt "
        "werden, denn über den Winter sackt die Füllung eines Hochbeets um einige Zentimeter ab. "
        "Ein Sack guter Pflanzerde kostet im Fachhandel etwa 8 € bis 12 €; wer einen eigenen "
        "Komposthaufen hat, spart sich diese Ausgabe.",
        "Für die ersten Wochen eignen sich robuste Kulturen wie Radieschen, Spinat, Pflücksalat "
        "und Frühlingszwiebeln. Empfindliche Pflanzen wie Tomaten, Gurken oder Basilikum gehören "
        "dagegen erst nach den Eisheiligen Mitte Mai ins Freie. „Wer zu früh pflanzt, riskiert, "
        "dass ein einziger Nachtfrost die Mühe von Wochen zunichtemacht“, warnt Gärtnermeisterin "
        "Jutta Köhler.",
        "Ein einfaches Vlies schützt junge Sämlinge vor kühlen Nächten und hungrigen Vögeln. "
        "Außerdem lohnt es sich, regelmäßig zu gießen: Hochbeete trocknen wegen ihrer erhöhten "
        "Lage schneller aus, als man denkt – besonders an sonnigen, windigen Tagen.",
    ),
)

DE_WANDERN_NOCHARSET = _Article(
    title="Über den Höhenweg: Eine Tageswanderung für Einsteiger",
    byline="Von Tobias Brenner | 19.05.2026",
    paragraphs=(
        "Der Höhenweg zwischen Grünbach und Schönau gehört zu den schönsten Tagestouren der Region "
        "und ist auch für ungeübte Wanderer gut zu bewältigen. Auf knapp vierzehn Kilometern führt "
        "er über sanfte Kuppen, durch lichte Buchenwälder und an mehreren Aussichtspunkten vorbei, "
        "von denen man bei klarem Wetter bis zu den Alpen blicken kann.",
        "Startpunkt ist der Wanderparkplatz oberhalb von Grünbach, der auch mit dem Bus erreichbar "
        "ist. Die Markierung, ein weißes Dreieck auf grünem Grund, ist durchgehend gut zu "
        "erkennen. Nach etwa einer Stunde erreicht man die Hütte am Fuchsköpfle, die an "
        "Wochenenden bewirtet wird und für ihren Käsekuchen bekannt ist.",
        "Festes Schuhwerk ist trotz der mäßigen Steigungen empfehlenswert, denn nach Regenfällen "
        "können die Wurzelpfade im Wald rutschig sein. Wer früh aufbricht, genießt die Ruhe und "
        "hat die Aussichtsplätze oft für sich allein. Für den Rückweg fährt ab Schönau stündlich "
        "ein Bus nach Grünbach, sodass man die Strecke nicht doppelt laufen muss.",
    ),
)

EN_HARBOUR = _Article(
    title="Coastal town reopens its Victorian fish market after three-year restoration",
    byline="By Tom Hughes | 22 August 2026",
    paragraphs=(
        "After three years behind scaffolding, the Victorian fish market in the harbour town of "
        "Kellford reopened to the public on Saturday morning. Several hundred residents queued "
        "along the quay before the doors opened, many of them eager to see whether the "
        "restoration had preserved the building's distinctive cast-iron roof.",
        "The market hall, built in 1884, had been closed since a storm damaged part of its glazing "
        "and exposed serious corrosion in the supporting columns. Engineers found that salt spray "
        "had been eating into the ironwork for decades, and at one point the town council "
        "considered demolishing the structure altogether. A local campaign collected more than "
        "eleven thousand signatures to save it.",
        "The restoration cost roughly £4.2 million, most of it covered by a heritage grant, with "
        "the remainder raised through council funds and private donations. Around two thirds of "
        "the original columns could be repaired; the others were recast at a foundry using moulds "
        "taken from the surviving pieces.",
        "Inside, the hall now houses eleven stalls, including two fishmongers, a bakery, a cheese "
        "counter and a small café run by a cooperative of fishing families. The upper gallery, "
        "closed for years for safety reasons, has been turned into an exhibition space that tells "
        "the story of the town's fishing fleet.",
        "Not everyone is entirely satisfied. Some traders say the rents are higher than they had "
        "hoped, and parking near the harbour remains scarce. But for most visitors on opening day "
        "the mood was celebratory. \u201cI bought my first crab here as a boy,\u201d said one "
        "retired fisherman. \u201cIt\u2019s good to see the place full of people again.\u201d",
    ),
)

EN_SOURDOUGH = _Article(
    title="A beginner's guide to baking sourdough bread at home",
    byline="By Priya Shah | 9 July 2026",
    paragraphs=(
        "Sourdough has a reputation for being complicated, but at its heart it is just flour, "
        "water, salt and time. The difference from ordinary bread is that the dough is raised by "
        "a starter, a living culture of wild yeasts and lactic acid bacteria, rather than by a "
        "packet of commercial yeast. That culture gives sourdough its open crumb, its chewy crust "
        "and its gentle tang.",
        "If you don't have a friend willing to share their starter, you can make your own. Mix "
        "equal weights of wholemeal flour and water in a jar, cover it loosely and leave it "
        "somewhere warm. Each day, discard about half and feed it again with fresh flour and "
        "water. After one to two weeks it should reliably double in size within a few hours of "
        "feeding, which means it is ready to bake with.",
        "For a simple loaf, combine 500 grams of strong white flour with 350 grams of water and "
        "100 grams of active starter, then leave it to rest for half an hour before adding 10 "
        "grams of salt. Over the next few hours, give the dough a series of gentle stretches and "
        "folds every thirty minutes. You will feel it change from a shaggy mass into something "
        "smooth, elastic and full of air.",
        "Once the dough has grown by about half, shape it into a tight ball, place it in a floured "
        "basket and let it prove slowly in the fridge overnight. The cold slows the yeast down but "
        "gives the bacteria time to develop flavour. In the morning, bake it in a preheated "
        "cast-iron pot at 240 degrees Celsius, first with the lid on for twenty minutes and then "
        "uncovered until the crust is a deep brown.",
        "Your first loaves will probably not look like the ones in bakery windows, and that is "
        "perfectly normal. Keep notes on temperatures and timings, change one thing at a time, and "
        "you will soon learn how your starter and your kitchen behave.",
    ),
)

EN_BEES = _Article(
    title="Why urban gardens need wild bees",
    byline="By Dr. Helen Carter | 14 May 2026",
    paragraphs=(
        "When people think of pollinators, they usually picture the honeybee. Yet in most cities "
        "much of the pollination is done by hundreds of lesser-known wild bee species, from "
        "bumblebees to tiny solitary bees barely larger than a grain of rice. For some crops and "
        "wild flowers, these bees are far more effective pollinators than honeybees are.",
        "Unlike honeybees, most wild bees do not live in large colonies. Roughly seven in ten "
        "solitary species nest in the ground, digging short tunnels in bare, sunny patches of "
        "soil. Others use hollow plant stems, old beetle holes in dead wood or gaps in walls. A "
        "neatly mown lawn and freshly paved paths leave them very few places to raise their young.",
        "Food is the other problem. Many wild bees are specialists that collect pollen from only a "
        "handful of plant families, and some fly for just a few weeks each year. If the right "
        "flowers are not in bloom at the right time, within a few hundred metres of the nest, a "
        "local population can disappear in a single season.",
        "The good news is that small changes help. Leaving a corner of the garden unmown, planting "
        "native flowering herbs and shrubs, and keeping a patch of bare soil free of mulch can make "
        "a measurable difference. Surveys of city allotments have found that even modest plots can "
        "support dozens of species when they offer flowers from early spring until autumn.",
    ),
)

FR_MARCHE = _Article(
    title="Le marché couvert de Saint-Aubin fête ses cent ans",
    byline="Par Claire Dubois | 12 septembre 2026",
    paragraphs=(
        "Le marché couvert de Saint-Aubin a célébré samedi son centième anniversaire en présence "
        "de plusieurs centaines d'habitants. Construit en 1926 à l'emplacement d'une ancienne "
        "halle aux grains, le bâtiment de briques rouges et de verre est devenu au fil des "
        "décennies l'un des lieux les plus fréquentés du centre-ville.",
        "Pour l'occasion, les commerçants avaient décoré leurs étals de guirlandes et proposaient "
        "des dégustations gratuites de fromages, de charcuteries et de pâtisseries régionales. "
        "Une exposition de photographies anciennes, installée le long de la galerie supérieure, "
        "retraçait l'histoire du marché depuis son inauguration jusqu'à sa rénovation complète au "
        "début des années 2000.",
        "« Mon grand-père vendait déjà des légumes ici avant la guerre », raconte Martine "
        "Lefèvre, maraîchère installée sous la halle depuis plus de trente ans. « Les clients ont "
        "changé, les habitudes aussi, mais l'ambiance du samedi matin est restée la même. » Comme "
        "elle, une vingtaine de commerçants occupent aujourd'hui les emplacements permanents.",
        "La municipalité a profité de cet anniversaire pour annoncer de nouveaux travaux. La "
        "toiture, dont certaines verrières laissent passer l'eau, doit être réparée l'an "
        "prochain, et des panneaux solaires seront posés sur le versant sud. Le maire a également "
        "évoqué l'ouverture d'un marché du soir pendant l'été, une idée qui semble séduire les "
        "plus jeunes.",
        "Les festivités se poursuivront tout le mois avec des concerts, des ateliers de cuisine "
        "pour les enfants et une visite guidée des caves voûtées situées sous le bâtiment, "
        "habituellement fermées au public.",
    ),
)

FR_RATATOUILLE = _Article(
    title="Comment réussir une ratatouille comme en Provence",
    byline="Par Julien Marchand | 3 août 2026",
    paragraphs=(
        "La ratatouille est l'un des plats les plus emblématiques de la cuisine provençale, mais "
        "elle est souvent mal préparée. Le secret d'une bonne ratatouille tient en une règle "
        "simple : cuire chaque légume séparément avant de les réunir. Ainsi, chacun conserve sa "
        "texture et son goût, au lieu de se transformer en une compote uniforme.",
        "Pour quatre personnes, il faut deux aubergines, deux courgettes, deux poivrons, un gros "
        "oignon, quatre tomates bien mûres, trois gousses d'ail, de l'huile d'olive, du thym et "
        "une feuille de laurier. Coupez tous les légumes en cubes d'environ deux centimètres, en "
        "gardant les tomates à part.",
        "Faites revenir l'oignon émincé dans une cocotte avec un filet d'huile d'olive, puis "
        "ajoutez les poivrons et laissez-les fondre une dizaine de minutes. Pendant ce temps, "
        "faites dorer les aubergines dans une grande poêle, puis les courgettes, chacune à son "
        "tour et sans trop les remuer. Les aubergines absorbent beaucoup d'huile : mieux vaut en "
        "ajouter petit à petit.",
        "Réunissez ensuite tous les légumes dans la cocotte avec les tomates concassées, l'ail "
        "écrasé, le thym et le laurier. Salez, poivrez, couvrez et laissez mijoter à feu doux "
        "pendant environ quarante minutes, en remuant délicatement de temps en temps.",
        "La ratatouille est encore meilleure réchauffée le lendemain, lorsque les saveurs ont eu "
        "le temps de se mêler. Elle se déguste chaude avec du riz ou une viande grillée, mais "
        "aussi froide, en entrée, avec un morceau de pain de campagne.",
    ),
)

FR_FEUILLES = _Article(
    title="Pourquoi les feuilles changent-elles de couleur en automne ?",
    byline="Par Élise Fournier | 18 octobre 2025",
    paragraphs=(
        "Chaque automne, les forêts se parent de jaune, d'orange et de rouge. Ce spectacle n'a "
        "rien de magique : il résulte de changements chimiques dans les feuilles, liés à la baisse "
        "de la lumière et des températures. L'arbre se prépare à l'hiver et récupère tout ce qui "
        "peut l'être avant de perdre son feuillage.",
        "Pendant la belle saison, les feuilles sont vertes grâce à la chlorophylle, le pigment qui "
        "permet la photosynthèse. Ce pigment est sans cesse détruit puis renouvelé. Lorsque les "
        "jours raccourcissent, l'arbre cesse d'en produire et décompose celle qui reste afin d'en "
        "récupérer l'azote, un élément précieux qu'il stocke dans ses branches et ses racines.",
        "À mesure que la chlorophylle disparaît, d'autres pigments deviennent visibles. Les "
        "caroténoïdes, responsables des teintes jaunes et orangées, étaient présents dans la "
        "feuille depuis le printemps, mais masqués par le vert. Les rouges vifs, en revanche, "
        "proviennent des anthocyanes, que certaines espèces comme les érables fabriquent justement "
        "à l'automne.",
        "L'intensité des couleurs varie d'une année à l'autre. Des journées ensoleillées suivies "
        "de nuits fraîches, sans gel, favorisent la production d'anthocyanes et donnent des "
        "automnes particulièrement flamboyants. À l'inverse, une sécheresse ou un gel précoce peut "
        "faire brunir les feuilles et précipiter leur chute.",
        "Une fois ce recyclage terminé, une couche de cellules se forme à la base du pétiole et "
        "sépare la feuille de la branche. Il suffit alors d'un coup de vent pour qu'elle tombe et "
        "rejoigne le tapis de feuilles mortes qui, en se décomposant, nourrira le sol.",
    ),
)


# ---------------------------------------------------------------------------------------------
# Site skins: everything around the article that an extractor should throw away
# ---------------------------------------------------------------------------------------------

_UI = {
    "de": {
        "cookie": "Wir verwenden Cookies, um Ihnen die bestmögliche Nutzung unserer Website zu "
        "ermöglichen. Mit einem Klick auf „Alle akzeptieren“ stimmen Sie der Verwendung zu. "
        "Weitere Informationen finden Sie in unserer Datenschutzerklärung.",
        "accept": "Alle akzeptieren",
        "settings": "Einstellungen",
        "skip": "Zum Inhalt springen",
        "search": "Suche",
        "share": "Artikel teilen:",
        "newsletter": "Unser Newsletter: Einmal pro Woche die wichtigsten Beiträge per E-Mail.",
        "email": "Ihre E-Mail-Adresse",
        "subscribe": "Abonnieren",
        "rights": "Alle Rechte vorbehalten.",
        "related": "Das könnte Sie auch interessieren",
    },
    "en": {
        "cookie": "We use cookies to give you the best experience on our website. By clicking "
        "\u201cAccept all\u201d you agree to our use of cookies. Read our privacy policy to learn more.",
        "accept": "Accept all",
        "settings": "Manage settings",
        "skip": "Skip to content",
        "search": "Search",
        "share": "Share this article:",
        "newsletter": "Sign up for our weekly newsletter and never miss a story.",
        "email": "Your email address",
        "subscribe": "Subscribe",
        "rights": "All rights reserved.",
        "related": "You might also like",
    },
    "fr": {
        "cookie": "Nous utilisons des cookies pour améliorer votre expérience sur notre site. En "
        "cliquant sur « Tout accepter », vous consentez à leur utilisation. Consultez notre "
        "politique de confidentialité pour en savoir plus.",
        "accept": "Tout accepter",
        "settings": "Paramétrer",
        "skip": "Aller au contenu",
        "search": "Rechercher",
        "share": "Partager cet article :",
        "newsletter": "Inscrivez-vous à notre lettre d'information hebdomadaire.",
        "email": "Votre adresse e-mail",
        "subscribe": "S'inscrire",
        "rights": "Tous droits réservés.",
        "related": "À lire aussi",
    },
}


@dataclass(frozen=True)
class _Site:
    name: str
    base: str
    lang: str
    tagline: str
    nav: tuple[str, ...]
    sidebar_title: str
    sidebar: tuple[str, ...]
    footer: tuple[str, ...]


STADTBLOG = _Site(
    name="Stadtblog Lindenfurt",
    base="https://www.example-stadtblog.de",
    lang="de",
    tagline="Geschichten aus der Stadt am Fluss",
    nav=("Startseite", "Geschichte", "Kultur", "Veranstaltungen", "Fotogalerie", "Über uns"),
    sidebar_title="Meistgelesen",
    sidebar=(
        "Die schönsten Fachwerkhäuser der Altstadt",
        "Sommerfest am Flussufer: Das Programm",
        "Zehn Fragen an den Stadtarchivar",
        "Wie die Linden an die Furt kamen",
    ),
    footer=("Impressum", "Datenschutz", "Kontakt", "Cookie-Einstellungen", "Barrierefreiheit"),
)

KOCHECKE = _Site(
    name="Die Kochecke",
    base="https://www.example-kochecke.de",
    lang="de",
    tagline="Rezepte, die gelingen",
    nav=("Rezepte", "Backen", "Vegetarisch", "Saisonkalender", "Küchentipps", "Newsletter"),
    sidebar_title="Beliebte Rezepte",
    sidebar=(
        "Kartoffelsuppe mit Majoran",
        "Zwetschgendatschi vom Blech",
        "Linsensalat mit Feta",
        "Schneller Hefezopf zum Frühstück",
        "Kürbisrisotto mit Salbei",
    ),
    footer=("Impressum", "Datenschutz", "Werben auf Die Kochecke", "Kontakt", "AGB"),
)

WISSENSMAGAZIN = _Site(
    name="Wissen kompakt",
    base="https://wissen.example-magazin.de",
    lang="de",
    tagline="Das Magazin für neugierige Köpfe",
    nav=("Natur", "Technik", "Weltall", "Gesundheit", "Geschichte", "Podcast"),
    sidebar_title="Neu im Magazin",
    sidebar=(
        "Wie entsteht ein Regenbogen?",
        "Warum Katzen schnurren",
        "Die Sache mit der Zeitzone",
        "Was Gletscher über das Klima verraten",
    ),
    footer=("Impressum", "Datenschutz", "Mediadaten", "Kontakt", "Abo verwalten"),
)

KREISZEITUNG = _Site(
    name="Kreiszeitung Obertal",
    base="https://www.example-kreiszeitung.de",
    lang="de",
    tagline="Nachrichten aus dem Landkreis",
    nav=("Regionales", "Politik", "Wirtschaft", "Sport", "Kultur", "Anzeigen", "E-Paper"),
    sidebar_title="Aktuelle Meldungen",
    sidebar=(
        "Feuerwehr übt an der Talsperre",
        "Kreistag berät über Haushalt",
        "Handballerinnen gewinnen Derby",
        "Umleitung wegen Brückenarbeiten",
        "Neue Kita in Kleinhausen eröffnet",
    ),
    footer=("Impressum", "Datenschutz", "AGB", "Abo-Service", "Mediadaten", "Kontakt"),
)

RADWERKSTATT = _Site(
    name="Radwerkstatt Blog",
    base="https://www.example-radwerkstatt.de",
    lang="de",
    tagline="Schrauben, fahren, genießen",
    nav=("Ratgeber", "Reparatur", "Touren", "Ausrüstung", "Werkstatt", "Shop"),
    sidebar_title="Weitere Ratgeber",
    sidebar=(
        "Bremsbeläge wechseln in zehn Minuten",
        "Den richtigen Reifendruck finden",
        "Schaltung einstellen ohne Frust",
        "Fahrrad winterfest machen",
    ),
    footer=("Impressum", "Datenschutz", "Versand und Zahlung", "Kontakt", "Öffnungszeiten"),
)

FEUILLETON = _Site(
    name="Das Feuilleton",
    base="https://www.example-feuilleton.de",
    lang="de",
    tagline="Essays, Kritiken, Gespräche",
    nav=("Essay", "Literatur", "Film", "Musik", "Gesellschaft", "Archiv"),
    sidebar_title="Aus dem Archiv",
    sidebar=(
        "Über das Schreiben von Briefen",
        "Die Stille der Bibliotheken",
        "Warum wir Listen lieben",
        "Ein Sommer ohne Smartphone",
    ),
    footer=("Impressum", "Datenschutz", "Autorinnen und Autoren", "Kontakt"),
)

NACHRICHTENPORTAL = _Site(
    name="Nachrichtenportal Mitte",
    base="https://www.example-nachrichtenportal.de",
    lang="de",
    tagline="Alle Nachrichten. Ein Portal.",
    nav=("Home", "Deutschland", "Regionen", "Reise", "Ratgeber", "Video", "Mehr"),
    sidebar_title="Top-Themen",
    sidebar=(
        "Die besten Ausflugsziele im Herbst",
        "Wetter: Wochenende bleibt mild",
        "So sparen Sie beim Heizen",
        "Quiz: Wie gut kennen Sie Ihre Region?",
    ),
    footer=("Impressum", "Datenschutz", "Nutzungsbedingungen", "Partner", "Kontakt"),
)

REGIONALTICKER = _Site(
    name="Regionalticker",
    base="https://www.example-regionalticker.de",
    lang="de",
    tagline="Schnell informiert",
    nav=("Ticker", "Landkreise", "Blaulicht", "Verkehr", "Termine"),
    sidebar_title="Meistgeklickt",
    sidebar=(
        "Blitzer-Standorte dieser Woche",
        "Stau auf der B 27",
        "Neue Öffnungszeiten im Bürgerbüro",
    ),
    footer=("Impressum", "Datenschutz", "Hinweis geben", "Kontakt"),
)

FAHRRADFORUM = _Site(
    name="Fahrradforum Magazin",
    base="https://www.example-fahrradforum.de",
    lang="de",
    tagline="Die Community rund ums Rad",
    nav=("Forum", "Magazin", "Marktplatz", "Tests", "Mitglieder", "Anmelden"),
    sidebar_title="Neu im Forum",
    sidebar=(
        "Welches Lastenrad für zwei Kinder?",
        "Nabenschaltung knackt bei Last",
        "Erfahrungen mit Tubeless am Reiserad",
        "Suche Mitfahrer für Elbe-Radweg",
    ),
    footer=("Impressum", "Datenschutz", "Forenregeln", "Hilfe", "Kontakt"),
)

GARTENFREUNDE = _Site(
    name="Gartenfreunde Nordstadt",
    base="https://www.example-gartenfreunde.de",
    lang="de",
    tagline="Gemeinsam gärtnern",
    nav=("Aktuelles", "Gartentipps", "Termine", "Verein", "Mitglied werden"),
    sidebar_title="Nächste Termine",
    sidebar=(
        "Pflanzentauschbörse am Samstag",
        "Obstbaumschnitt mit Fachberater",
        "Jahreshauptversammlung im Vereinsheim",
    ),
    footer=("Impressum", "Datenschutz", "Satzung", "Kontakt"),
)

WANDERWEGE = _Site(
    name="Wanderwege Südwest",
    base="https://www.example-wanderwege.de",
    lang="de",
    tagline="Touren für jede Jahreszeit",
    nav=("Touren", "Karten", "Einkehr", "Ausrüstung", "Über uns"),
    sidebar_title="Weitere Touren",
    sidebar=(
        "Rundweg um den Mühlsee",
        "Auf dem Kammweg zur Burgruine",
        "Familienwanderung am Wildbach",
    ),
    footer=("Impressum", "Datenschutz", "Haftungsausschluss", "Kontakt"),
)

GAZETTE = _Site(
    name="The Coastal Gazette",
    base="https://news.example.com",
    lang="en",
    tagline="News from the coast since 1921",
    nav=("News", "Business", "Sport", "Opinion", "Lifestyle", "Puzzles"),
    sidebar_title="Most read",
    sidebar=(
        "Lifeboat crew rescue stranded kayakers",
        "New ferry timetable announced",
        "Council approves seafront cycle path",
        "Letters: readers on the harbour parking plan",
    ),
    footer=("About us", "Contact", "Privacy policy", "Cookie settings", "Terms of use"),
)

BAKING_BLOG = _Site(
    name="Flour & Crumb",
    base="https://blog.example.org",
    lang="en",
    tagline="A home baker's notebook",
    nav=("Home", "Bread", "Cakes", "Techniques", "About", "Shop"),
    sidebar_title="Popular posts",
    sidebar=(
        "Ten mistakes I made with my first starter",
        "The easiest focaccia you will ever bake",
        "Choosing the right flour for bread",
    ),
    footer=("About", "Contact", "Privacy", "Affiliate disclosure"),
)

SCIENCE_SITE = _Site(
    name="Field Notes Science",
    base="https://science.example.net",
    lang="en",
    tagline="Nature, explained",
    nav=("Nature", "Climate", "Space", "Health", "Explainers", "Newsletter"),
    sidebar_title="Latest explainers",
    sidebar=(
        "How do birds find their way south?",
        "What makes soil healthy?",
        "The surprising life of lichens",
    ),
    footer=("About", "Editorial standards", "Contact", "Privacy", "Cookies"),
)

NEWS_FR = _Site(
    name="La Gazette de Saint-Aubin",
    base="https://news.example.fr",
    lang="fr",
    tagline="L'actualité de votre ville",
    nav=("Actualités", "Politique", "Économie", "Sports", "Culture", "Agenda"),
    sidebar_title="Les plus lus",
    sidebar=(
        "Travaux : la rue de la République fermée en octobre",
        "Le club de rugby s'impose à domicile",
        "Une nouvelle bibliothèque pour le quartier nord",
    ),
    footer=("Mentions légales", "Confidentialité", "Gestion des cookies", "Contact"),
)

CUISINE_FR = _Site(
    name="Cuisine du Sud",
    base="https://cuisine.example.fr",
    lang="fr",
    tagline="Recettes du soleil",
    nav=("Recettes", "Entrées", "Plats", "Desserts", "Saisons", "Astuces"),
    sidebar_title="Recettes populaires",
    sidebar=(
        "Tapenade maison aux olives noires",
        "Tarte aux figues et au miel",
        "Soupe au pistou",
    ),
    footer=("Mentions légales", "Confidentialité", "Contact", "Plan du site"),
)

SCIENCES_FR = _Site(
    name="Sciences pour tous",
    base="https://sciences.example.fr",
    lang="fr",
    tagline="Comprendre le monde qui nous entoure",
    nav=("Nature", "Espace", "Santé", "Technologie", "Dossiers", "Quiz"),
    sidebar_title="À découvrir",
    sidebar=(
        "Comment les oiseaux migrent-ils ?",
        "Pourquoi la mer est-elle salée ?",
        "Le mystère des aurores boréales",
    ),
    footer=("Qui sommes-nous", "Mentions légales", "Confidentialité", "Contact"),
)


def _slug(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e",
                           "ê": "e", "à": "a", "â": "a", "ç": "c", "ô": "o", "î": "i", "É": "e"})
    return re.sub(r"[^a-z0-9]+", "-", text.lower().translate(table)).strip("-")


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _links(labels: tuple[str, ...], prefix: str = "/") -> str:
    return "\n".join(f'      <li><a href="{prefix}{_slug(label)}/">{_e(label)}</a></li>'
                     for label in labels)


def _head(title: str, lang: str, charset: str | None, description: str = "") -> str:
    meta = f'<meta charset="{charset}">\n' if charset else ""
    desc = (f'<meta name="description" content="{html.escape(description)}">\n'
            if description else "")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n{meta}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n{desc}"
        '<link rel="stylesheet" href="/assets/css/site.css">\n'
        '<script src="/assets/js/consent.js" defer></script>\n'
        "</head>\n"
    )


def _chrome_top(site: _Site) -> str:
    ui = _UI[site.lang]
    return (
        f'<body>\n<a class="skip-link" href="#content">{_e(ui["skip"])}</a>\n'
        '<div id="cookie-banner" class="cookie-banner" role="dialog">\n'
        f'  <p>{_e(ui["cookie"])}</p>\n'
        f'  <button class="btn-accept">{_e(ui["accept"])}</button>\n'
        f'  <button class="btn-settings">{_e(ui["settings"])}</button>\n</div>\n'
        '<header class="site-header">\n'
        f'  <a class="logo" href="/">{_e(site.name)}</a>\n'
        f'  <p class="tagline">{_e(site.tagline)}</p>\n'
        f'  <form class="search" action="/suche"><input type="search" name="q" '
        f'placeholder="{_e(ui["search"])}"></form>\n'
        '  <nav class="main-nav">\n    <ul>\n'
        f"{_links(site.nav)}\n"
        "    </ul>\n  </nav>\n</header>\n"
    )


def _chrome_bottom(site: _Site, year: int = 2026) -> str:
    ui = _UI[site.lang]
    return (
        '<aside class="sidebar">\n'
        f"  <h2>{_e(site.sidebar_title)}</h2>\n  <ul>\n"
        f"{_links(site.sidebar, '/artikel/')}\n  </ul>\n"
        '  <div class="newsletter">\n'
        f'    <p>{_e(ui["newsletter"])}</p>\n'
        f'    <form action="/newsletter"><input type="email" placeholder="{_e(ui["email"])}">'
        f'<button>{_e(ui["subscribe"])}</button></form>\n'
        "  </div>\n</aside>\n</main>\n"
        '<footer class="site-footer">\n  <ul class="footer-links">\n'
        f"{_links(site.footer)}\n  </ul>\n"
        f'  <p class="copyright">© {year} {_e(site.name)}. {_e(ui["rights"])}</p>\n'
        "</footer>\n"
        '<script src="/assets/js/site.js"></script>\n'
        "</body>\n</html>\n"
    )


def _article_html(site: _Site, article: _Article, *, charset: str | None = "utf-8") -> str:
    ui = _UI[site.lang]
    share = " | ".join(f'<a href="/share/{n.lower()}">{n}</a>' for n in ("Facebook", "X", "E-Mail"))
    paragraphs = "\n".join(f"  <p>{_e(p)}</p>" for p in article.paragraphs)
    first_sentence = article.paragraphs[0].split(". ")[0] + "."
    return (
        _head(f"{article.title} | {site.name}", site.lang, charset, first_sentence)
        + _chrome_top(site)
        + '<main id="content">\n<article class="post">\n'
        f"  <h1>{_e(article.title)}</h1>\n"
        f'  <p class="byline">{_e(article.byline)}</p>\n'
        f"{paragraphs}\n"
        f'  <div class="share">{_e(ui["share"])} {share}</div>\n'
        "</article>\n"
        + _chrome_bottom(site)
    )


def _article_page(site: _Site, path: str, article: _Article, kind: str,
                  duplicate_of: str | None = None) -> DemoPage:
    return DemoPage(
        url=site.base + path,
        body=_article_html(site, article).encode("utf-8"),
        kind=kind,
        lang=site.lang,
        main_text=article.text,
        duplicate_of=duplicate_of,
    )


# ---------------------------------------------------------------------------------------------
# Pages with little or no real text
# ---------------------------------------------------------------------------------------------

_LISTING_INTRO = "Hier finden Sie alle Meldungen aus dem Landkreis Obertal, die neuesten zuerst."

_LISTING_HEADLINES = (
    ("Neue Buslinie verbindet sieben Dörfer mit der Kreisstadt", "28.08.2026"),
    ("Feuerwehr übt an der Talsperre", "27.08.2026"),
    ("Umleitung wegen Brückenarbeiten in Oberau", "27.08.2026"),
    ("Kreistag berät über Haushalt 2027", "26.08.2026"),
    ("Neue Kita in Kleinhausen eröffnet", "25.08.2026"),
    ("Sommerkonzert im Schlosspark fällt ins Wasser", "24.08.2026"),
    ("Landrätin besucht Ausbildungsmesse", "23.08.2026"),
    ("Glasfaserausbau: Dritter Abschnitt beginnt", "22.08.2026"),
    ("Handballerinnen gewinnen Derby deutlich", "21.08.2026"),
    ("Wochenmarkt zieht vorübergehend um", "20.08.2026"),
    ("Polizei sucht Zeugen nach Unfall", "19.08.2026"),
    ("Freibad verlängert die Saison", "18.08.2026"),
    ("Bürgerbüro mit neuen Öffnungszeiten", "17.08.2026"),
    ("Streuobstwiese wird neu bepflanzt", "16.08.2026"),
    ("Radweg nach Talheim freigegeben", "15.08.2026"),
    ("Jubiläum beim Musikverein", "14.08.2026"),
)


def _listing_page() -> DemoPage:
    site = KREISZEITUNG
    items = "\n".join(
        f'    <li class="teaser"><a href="/regionales/{_slug(t)}.html">{_e(t)} '
        f'<span class="date">{d}</span></a></li>'
        for t, d in _LISTING_HEADLINES
    )
    tags = " ".join(f'<a class="tag" href="/thema/{_slug(t)}/">{_e(t)}</a>'
                    for t in ("Verkehr", "Kreistag", "Schule", "Feuerwehr", "Sport", "Kultur",
                              "Wirtschaft", "Bauen", "Umwelt", "Vereine", "Polizei", "Wetter"))
    pager = " ".join(f'<a href="/regionales/seite/{n}/">{n}</a>' for n in range(1, 8))
    body = (
        _head("Regionales – Alle Artikel | Kreiszeitung Obertal", "de", "utf-8")
        + _chrome_top(KREISZEITUNG)
        + '<main id="content">\n<section class="category">\n'
        "  <h1>Regionales</h1>\n"
        f'  <p class="intro">{_e(_LISTING_INTRO)}</p>\n'
        '  <ul class="teaser-list">\n'
        f"{items}\n  </ul>\n"
        f'  <nav class="pagination">{pager} <a href="/regionales/seite/2/">Nächste Seite</a></nav>\n'
        f'  <div class="tag-cloud">Themen: {tags}</div>\n'
        '  <div class="ad" data-slot="billboard">Anzeige</div>\n'
        "</section>\n"
        + _chrome_bottom(site)
    )
    return DemoPage(site.base + "/regionales/", body.encode("utf-8"), kind="boilerplate",
                    lang="de", main_text=_LISTING_INTRO)


_SHOP_INTRO = ("Browse our range of city and trekking bikes, each one assembled and safety-checked "
               "in our own workshop.")

_SHOP_PRODUCTS = (
    ("Urban Glide 3", "£549.00"), ("Urban Glide 7", "£699.00"),
    ("Trek Voyager 24", "£849.00"), ("Trek Voyager Pro", "£1,099.00"),
    ("Canal Cruiser", "£429.00"), ("Canal Cruiser Step-Through", "£449.00"),
    ("Metro Fold 16", "£599.00"), ("Hillclimber E-Assist", "£1,849.00"),
    ("Commuter Classic", "£379.00"), ("Commuter Classic Lite", "£399.00"),
    ("Touring Tandem", "£1,299.00"), ("Kids Explorer 24", "£289.00"),
)


def _shop_page() -> DemoPage:
    site = _Site(
        name="Wheelhouse Cycles",
        base="https://shop.example.com",
        lang="en",
        tagline="Free delivery on orders over £50",
        nav=("New arrivals", "Bikes", "E-bikes", "Components", "Clothing", "Accessories", "Sale"),
        sidebar_title="Customer service",
        sidebar=("Delivery information", "Returns and refunds", "Finance options", "Bike fitting"),
        footer=("About us", "Store finder", "Careers", "Privacy", "Cookies", "Terms and conditions"),
    )
    tiles = "\n".join(
        f'    <li class="product"><a href="/p/{_slug(name)}"><img src="/img/{_slug(name)}.jpg" '
        f'alt="{_e(name)}"><h3>{_e(name)}</h3><span class="price">{price}</span></a> '
        f'<button class="add">Add to basket</button> '
        f'<a class="wish" href="/wishlist/add/{_slug(name)}">Wishlist</a></li>'
        for name, price in _SHOP_PRODUCTS
    )
    filters = "\n".join(f'    <li><label><input type="checkbox" name="f" value="{_slug(f)}"> '
                        f"{_e(f)}</label></li>"
                        for f in ("Under £500", "£500–£1,000", "Over £1,000", "Hub gears",
                                  "Derailleur", "Disc brakes", "Step-through frame", "Electric"))
    body = (
        _head("City & Trekking Bikes | Wheelhouse Cycles", "en", "utf-8")
        + _chrome_top(site)
        + '<main id="content">\n'
        '<nav class="breadcrumb"><a href="/">Home</a> / <a href="/bikes/">Bikes</a> / '
        "City &amp; Trekking</nav>\n"
        "<h1>City &amp; Trekking Bikes</h1>\n"
        f'<p class="category-intro">{_e(_SHOP_INTRO)}</p>\n'
        '<div class="toolbar">Sort by: <a href="?sort=popular">Popular</a> | '
        '<a href="?sort=price_asc">Price: low to high</a> | '
        '<a href="?sort=price_desc">Price: high to low</a> | Showing 1–12 of 48 products</div>\n'
        '<div class="filters"><h2>Filter</h2>\n  <ul>\n'
        f"{filters}\n  </ul>\n</div>\n"
        '<ul class="product-grid">\n'
        f"{tiles}\n</ul>\n"
        '<nav class="pagination"><a href="?page=1">1</a> <a href="?page=2">2</a> '
        '<a href="?page=3">3</a> <a href="?page=4">4</a> <a href="?page=2">Next</a></nav>\n'
        + _chrome_bottom(site)
    )
    return DemoPage(site.base + "/bikes/city-trekking/", body.encode("utf-8"),
                    kind="boilerplate", lang="en", main_text=_SHOP_INTRO)


def _casino_spam() -> DemoPage:
    shout = [
        "BEST ONLINE CASINO 2026 !!! FREE SPINS NO DEPOSIT !!! WIN BIG TODAY !!!",
        "CASINO BONUS CASINO BONUS CASINO BONUS – 500% WELCOME BONUS – CLAIM NOW",
        "SLOTS SLOTS SLOTS JACKPOT JACKPOT JACKPOT MEGA WIN MEGA WIN",
        "ONLINE CASINO ONLINE CASINO ONLINE CASINO BEST ONLINE CASINO TOP CASINO",
        "FREE SPINS FREE SPINS FREE SPINS NO WAGERING INSTANT PAYOUT",
        "CLICK HERE CLICK HERE CLICK HERE >>> PLAY NOW <<< PLAY NOW <<<",
    ]
    keywords = ("online casino, casino bonus, free spins, no deposit bonus, slots, jackpot, "
                "roulette, blackjack, poker, best casino, casino online, win money, fast payout, "
                "casino 2026, bonus code, free bonus, real money casino")
    lines = []
    for n in range(8):
        for line in shout:
            lines.append(f"<p><b>{_e(line)}</b></p>")
        lines.append(f'<p><a href="https://go.example-casino-bonus.com/r?id={n}">'
                     "&gt;&gt;&gt; GET YOUR BONUS NOW &lt;&lt;&lt;</a></p>")
    body = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>BEST ONLINE CASINO 2026 | FREE SPINS | CASINO BONUS | WIN BIG</title>\n"
        f'<meta name="keywords" content="{keywords}">\n'
        "</head>\n<body>\n"
        "<h1>BEST ONLINE CASINO BONUS FREE SPINS WIN WIN WIN</h1>\n"
        + "\n".join(lines)
        + f'\n<div style="display:none">{_e(keywords)} {_e(keywords)} {_e(keywords)}</div>\n'
        "</body>\n</html>\n"
    )
    return DemoPage("https://www.example-casino-bonus.com/free-spins-no-deposit-2026.html",
                    body.encode("utf-8"), kind="spam", lang="en")


def _pill_spam() -> DemoPage:
    shout = [
        "CHEAP PILLS ONLINE – NO PRESCRIPTION NEEDED – BEST PRICE GUARANTEED",
        "BUY CHEAP MEDS NOW!!! 90% OFF!!! DISCREET SHIPPING WORLDWIDE!!!",
        "GÜNSTIGE PILLEN KAUFEN OHNE REZEPT – JETZT BESTELLEN – SOFORT LIEFERUNG",
        "PILLS PILLS PILLS CHEAP CHEAP CHEAP DISCOUNT DISCOUNT DISCOUNT",
        "ORDER NOW ORDER NOW ORDER NOW – LIMITED OFFER – BUY 2 GET 10 FREE",
    ]
    links = " ".join(f'<a href="/buy/{w}">{w.upper()}</a>'
                     for w in ("cheap-pills", "discount-meds", "no-prescription", "best-price",
                               "online-pharmacy", "buy-now", "pillen-kaufen", "billig-bestellen"))
    rows = []
    for n in range(10):
        rows.extend(f"<h2>{_e(line)}</h2>" if i == 0 else f"<p>{_e(line)}</p>"
                    for i, line in enumerate(shout))
        rows.append(f"<p>{links}</p>")
    body = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>CHEAP PILLS ONLINE NO PRESCRIPTION BUY NOW BEST PRICE</title>\n"
        "</head>\n<body>\n"
        + "\n".join(rows)
        + "\n</body>\n</html>\n"
    )
    return DemoPage("https://www.example-pharma-discount.net/cheap-pills-online-no-prescription",
                    body.encode("utf-8"), kind="spam", lang="en")


def _latin1_page() -> DemoPage:
    # Charset declared only in <meta charset>; the HTTP Content-Type carries none.
    site = GARTENFREUNDE
    body = _article_html(site, DE_GARTEN_CP1252, charset="windows-1252").encode("cp1252")
    return DemoPage(site.base + "/gartentipps/hochbeete-im-fruehjahr.html", body,
                    content_type="text/html", kind="latin1", lang="de",
                    main_text=DE_GARTEN_CP1252.text)


def _no_charset_page() -> DemoPage:
    # UTF-8 bytes, but no charset in the HTTP header and no <meta charset> in the document.
    site = WANDERWEGE
    body = _article_html(site, DE_WANDERN_NOCHARSET, charset=None).encode("utf-8")
    return DemoPage(site.base + "/touren/hoehenweg-gruenbach-schoenau", body,
                    content_type="text/html", kind="no-charset", lang="de",
                    main_text=DE_WANDERN_NOCHARSET.text)


def _not_found_page() -> DemoPage:
    site = STADTBLOG
    body = (
        _head("Seite nicht gefunden | Stadtblog Lindenfurt", "de", "utf-8")
        + _chrome_top(site)
        + '<main id="content">\n<section class="error">\n'
        "  <h1>404 – Seite nicht gefunden</h1>\n"
        "  <p>Die angeforderte Seite existiert nicht oder wurde verschoben.</p>\n"
        '  <p><a href="/">Zur Startseite</a></p>\n'
        "</section>\n"
        + _chrome_bottom(site)
    )
    return DemoPage(site.base + "/archiv/2019/stadtfest-programm.html", body.encode("utf-8"),
                    status=404, kind="non-200", lang="de")


# A few bytes that start like a real PDF; enough for MIME sniffing, not a valid document.
_FAKE_PDF = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
             b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
             b"3 0 obj\n<< /Length 24 /Filter /FlateDecode >>\nstream\n"
             b"x\x9c\x03\x00\x00\x00\x00\x01\x8f\x1e\x00\xff\x10\x80\x7f\x00\x00\x01\xfe\n"
             b"endstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


# ---------------------------------------------------------------------------------------------
# The page list
# ---------------------------------------------------------------------------------------------


def demo_pages() -> list[DemoPage]:
    """All hand-made demo pages, in the order they are written to the demo WARC."""
    lindenfurt_url = STADTBLOG.base + "/geschichte/vom-faehrdorf-zur-brueckenstadt.html"
    buslinie_url = KREISZEITUNG.base + "/regionales/neue-buslinie-verbindet-sieben-doerfer.html"
    kette_url = RADWERKSTATT.base + "/ratgeber/fahrradkette-reinigen-und-oelen"

    return [
        # Articles: the main text is clearly the <article>.
        _article_page(STADTBLOG, "/geschichte/vom-faehrdorf-zur-brueckenstadt.html",
                      DE_STADTGESCHICHTE, "article-de"),
        _article_page(KOCHECKE, "/rezepte/apfelstrudel-mit-selbst-gezogenem-teig",
                      DE_REZEPT, "article-de"),
        _article_page(WISSENSMAGAZIN, "/natur/warum-ist-der-himmel-blau", DE_WISSEN, "article-de"),
        _article_page(KREISZEITUNG, "/regionales/neue-buslinie-verbindet-sieben-doerfer.html",
                      DE_REGIONAL, "article-de"),
        _article_page(RADWERKSTATT, "/ratgeber/fahrradkette-reinigen-und-oelen",
                      DE_FAHRRAD, "article-de"),
        _article_page(FEUILLETON, "/essay/langsam-ankommen", DE_ESSAY, "article-de"),
        _article_page(GAZETTE, "/local/2026/08/22/kellford-fish-market-reopens",
                      EN_HARBOUR, "article-en"),
        _article_page(BAKING_BLOG, "/bread/sourdough-for-beginners/", EN_SOURDOUGH, "article-en"),
        _article_page(SCIENCE_SITE, "/explainers/why-urban-gardens-need-wild-bees",
                      EN_BEES, "article-en"),
        _article_page(NEWS_FR, "/local/2026/09/12/le-marche-couvert-fete-ses-cent-ans",
                      FR_MARCHE, "article-fr"),
        _article_page(CUISINE_FR, "/recettes/ratatouille-provencale", FR_RATATOUILLE, "article-fr"),
        _article_page(SCIENCES_FR, "/nature/pourquoi-les-feuilles-changent-de-couleur",
                      FR_FEUILLES, "article-fr"),
        # Pages that are mostly navigation.
        _listing_page(),
        _shop_page(),
        # The same article again elsewhere: two with a word or two changed, one verbatim.
        _article_page(NACHRICHTENPORTAL, "/regionen/lindenfurt-geschichte-der-brueckenstadt",
                      DE_STADTGESCHICHTE.replace("lebhaftesten", "lebendigsten")
                      .replace("das kleine Museum", "das kleine Heimatmuseum"),
                      "near-duplicate", duplicate_of=lindenfurt_url),
        _article_page(REGIONALTICKER, "/ticker/2026-08-28/buslinie-542-startet",
                      DE_REGIONAL.replace("überwiegend positiv", "größtenteils positiv"),
                      "near-duplicate", duplicate_of=buslinie_url),
        _article_page(FAHRRADFORUM, "/magazin/ratgeber/kette-reinigen-oelen.html",
                      DE_FAHRRAD, "exact-duplicate", duplicate_of=kette_url),
        # Spam.
        _casino_spam(),
        _pill_spam(),
        # Charset detection.
        _latin1_page(),
        _no_charset_page(),
        # HTTP and content-type edge cases.
        DemoPage("https://www.example-stadtblog.de/entwurf/leer.html",
                 b"<html><body></body></html>", kind="empty"),
        DemoPage("https://www.example-kreiszeitung.de/downloads/fahrplan-linie-542.pdf",
                 _FAKE_PDF, content_type="application/pdf", kind="non-html"),
        _not_found_page(),
        DemoPage("https://www.example-stadtblog.de/geschichte", b"",
                 status=301, content_type="text/html",
                 kind="redirect",
                 extra_headers=(("Location", "https://www.example-stadtblog.de/geschichte/"),)),
    ]


# ---------------------------------------------------------------------------------------------
# Vocabulary for the generated bulk pages (see tasks.demo_warc.make_bulk_warc)
# ---------------------------------------------------------------------------------------------
#
# Sentences are assembled as  subject + verb + [modifier] + object  with the verb agreeing with
# the subject ("sg"/"pl").  Subjects start with a capitalised article or adjective, so that
# lower-casing their first letter lets them follow an opener with verb-second word order.

BULK_VOCABULARY: dict[str, dict[str, tuple]] = {
    "de": {
        "subjects": (
            ("Der Gemeinderat", "sg"), ("Die Bürgerinitiative", "sg"), ("Viele Anwohner", "pl"),
            ("Die Stadtwerke", "pl"), ("Das Museum", "sg"), ("Die Forscherinnen", "pl"),
            ("Ein kleiner Verein", "sg"), ("Die Landwirte", "pl"), ("Die Bibliothek", "sg"),
            ("Zahlreiche Besucher", "pl"), ("Die Schule", "sg"), ("Der Radclub", "sg"),
            ("Die Bäckerei am Markt", "sg"), ("Junge Familien", "pl"), ("Die Kreisverwaltung", "sg"),
            ("Mehrere Unternehmen", "pl"), ("Das Theater", "sg"), ("Die Feuerwehr", "sg"),
            ("Ehrenamtliche Helfer", "pl"), ("Die Hochschule", "sg"),
        ),
        "verbs": (
            ("plant", "planen"), ("unterstützt", "unterstützen"), ("kritisiert", "kritisieren"),
            ("begrüßt", "begrüßen"), ("untersucht", "untersuchen"), ("organisiert", "organisieren"),
            ("fordert", "fordern"), ("diskutiert", "diskutieren"), ("erneuert", "erneuern"),
            ("finanziert", "finanzieren"), ("prüft", "prüfen"), ("beschreibt", "beschreiben"),
        ),
        "objects": (
            "den Ausbau der Radwege", "eine neue Ausstellung", "die Sanierung des Freibads",
            "einen Wochenmarkt am Samstag", "das Konzept für den Stadtpark",
            "mehr Grünflächen in der Innenstadt", "die Verlängerung der Straßenbahn",
            "ein Projekt zur Wasserqualität", "den Umbau des alten Bahnhofs",
            "eine Sammlung historischer Karten", "die Pflege der Streuobstwiesen",
            "einen Kurs für digitale Medien", "die Öffnungszeiten der Bücherei",
            "den Bau eines Spielplatzes", "ein Fest für die ganze Nachbarschaft",
            "die Renovierung der Turnhalle", "ein Programm gegen Lebensmittelverschwendung",
            "die Beleuchtung am Flussufer",
        ),
        "modifiers": (
            "seit dem vergangenen Frühjahr", "in den kommenden Monaten", "nach langer Diskussion",
            "trotz knapper Kassen", "gemeinsam mit der Hochschule", "zum ersten Mal",
            "mit großer Mehrheit", "im Rahmen eines Pilotprojekts", "noch vor dem Winter",
            "auf Anregung der Anwohner", "mit Unterstützung des Landes", "ohne viel Aufsehen",
        ),
        "openers": (
            "Nach Angaben der Verwaltung", "Wie erst jetzt bekannt wurde,", "Bereits im Sommer",
            "Laut einer aktuellen Umfrage", "Auch in diesem Jahr", "Schon seit Wochen",
            "Zur Überraschung vieler", "Wie in den Vorjahren",
        ),
        "reasons": (
            "die Nachfrage stetig wächst", "sich viele Menschen mehr Angebote wünschen",
            "die alten Anlagen kaum noch zu reparieren sind",
            "das Land einen Zuschuss in Aussicht gestellt hat",
            "die Erfahrungen anderer Städte ermutigend sind",
            "der Bedarf im Stadtteil gestiegen ist",
        ),
        "because": ("weil",),
        "nav": ("Startseite", "Lokales", "Politik", "Kultur", "Sport", "Service"),
        "footer": ("Impressum", "Datenschutz", "Kontakt", "Cookie-Einstellungen"),
        "title_prefix": ("Aus dem Stadtteil", "Lokales", "Kurz berichtet", "Hintergrund"),
    },
    "en": {
        "subjects": (
            ("The town council", "sg"), ("Local residents", "pl"), ("The library", "sg"),
            ("Researchers at the university", "pl"), ("A small charity", "sg"),
            ("Several farmers", "pl"), ("The museum", "sg"), ("Volunteers", "pl"),
            ("The primary school", "sg"), ("The cycling club", "sg"), ("Young families", "pl"),
            ("The county authority", "sg"), ("Local businesses", "pl"), ("The theatre", "sg"),
            ("The fire brigade", "sg"), ("Community groups", "pl"),
        ),
        "verbs": (
            ("is planning", "are planning"), ("supports", "support"),
            ("has criticised", "have criticised"), ("welcomed", "welcomed"),
            ("is studying", "are studying"), ("organised", "organised"),
            ("called for", "called for"), ("debated", "debated"), ("has funded", "have funded"),
            ("is reviewing", "are reviewing"), ("described", "described"),
        ),
        "objects": (
            "a new cycle lane along the river", "the renovation of the swimming pool",
            "a Saturday farmers' market", "an exhibition of old photographs",
            "more green space in the town centre", "an extension of the tram line",
            "a project on water quality", "the conversion of the old station",
            "a collection of historic maps", "the care of the old orchards",
            "a course on digital skills", "longer library opening hours",
            "a new playground by the canal", "a street party for the whole neighbourhood",
            "the repair of the sports hall", "a scheme to reduce food waste",
            "better lighting along the riverside path",
        ),
        "modifiers": (
            "earlier this year", "over the coming months", "after a long debate",
            "despite a tight budget", "together with the local college", "for the first time",
            "by a large majority", "as part of a pilot scheme", "before the winter",
            "at the request of residents", "with support from the regional government",
            "without much fanfare",
        ),
        "openers": (
            "According to the council,", "As it emerged this week,", "Earlier in the summer,",
            "According to a recent survey,", "Once again this year,", "For several weeks now,",
            "To the surprise of many,", "As in previous years,",
        ),
        "reasons": (
            "demand keeps growing", "many people have asked for more options",
            "the old facilities can hardly be repaired any more",
            "the regional government has offered a grant",
            "other towns have had encouraging results",
            "the need in the district has increased",
        ),
        "because": ("because",),
        "nav": ("Home", "Local", "Politics", "Culture", "Sport", "Services"),
        "footer": ("About", "Privacy", "Contact", "Cookie settings"),
        "title_prefix": ("Around town", "Local news", "In brief", "Background"),
    },
}
