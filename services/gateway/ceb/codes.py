"""Customs' parameter codes that CEB messages use, and what they are in our documents (spec §7.5).

Source: China customs' code sets "JGS-20 海关业务代码集" (the CEB schemas name it for `currency`, `country`
and `unit`): 币制代码表 (currency), 国别(地区)代码表 (country or region), 计量单位代码表 (unit of measure).
Only the codes below are covered, chosen as the currencies, countries and units of cross-border e-commerce
trade with China; a code outside them is refused with a problem naming the element (never guessed), and the
table grows by adding a line. Each customs code is also kept as received in the document's `extras`.
"""
from __future__ import annotations

# 币制代码表 → ISO 4217.
CURRENCIES: dict[str, str] = {
    "110": "HKD", "116": "JPY", "121": "MOP", "122": "MYR", "129": "PHP", "132": "SGD", "133": "KRW",
    "136": "THB", "142": "CNY", "143": "TWD", "300": "EUR", "302": "DKK", "303": "GBP", "326": "NOK",
    "330": "SEK", "331": "CHF", "344": "RUB", "501": "CAD", "502": "USD", "601": "AUD", "609": "NZD",
}

# 国别(地区)代码表 → ISO 3166-1 alpha-2.
COUNTRIES: dict[str, str] = {
    "110": "HK", "116": "JP", "121": "MO", "122": "MY", "129": "PH", "132": "SG", "133": "KR", "136": "TH",
    "141": "VN", "142": "CN", "143": "TW", "301": "BE", "302": "DK", "303": "GB", "304": "DE", "305": "FR",
    "307": "IT", "309": "NL", "312": "ES", "315": "AT", "326": "NO", "330": "SE", "331": "CH", "344": "RU",
    "410": "BR", "501": "CA", "502": "US", "601": "AU", "609": "NZ",
}

# 计量单位代码表 → our unit names (OrderItem.unit is free text of 1-16 characters; these are the names the
# examples and the demo use). Several customs units share one name (个 007, 只 008, 件 011 are all "piece");
# the customs code itself is kept in `extras` (`unit_code`) so the distinction is never lost.
UNITS: dict[str, str] = {
    "001": "set", "006": "set", "007": "piece", "008": "piece", "011": "piece", "012": "piece",
    "015": "piece", "017": "piece", "020": "piece", "025": "pair", "026": "pair", "030": "m", "032": "m2",
    "033": "m3", "035": "kg", "036": "g", "070": "t", "095": "l", "096": "ml", "120": "box", "122": "can",
    "125": "pack", "136": "bag", "140": "box", "142": "bottle",
}

# buyerIdType / payerIdType (CEB311/CEB411): 1 identity card, 2 other.
ID_TYPES: dict[str, str] = {"1": "resident_id", "2": "other"}
