"""Reference data of the demo region, Krasnodar Krai: pure constants, no database code.

Categories, the top-level municipal formations, agencies, demo users and machine clients.
Emails use the reserved ``.example`` TLD; phones and secrets are fake.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CategorySeed:
    code: str
    name_ru: str
    name_en: str
    parent_code: str | None = None


@dataclass(frozen=True, slots=True)
class TerritorySeed:
    code: str
    oktmo: str | None
    name: str
    kind: str
    parent_code: str | None
    population: int


@dataclass(frozen=True, slots=True)
class AgencySeed:
    code: str
    name: str
    kind: str
    territory_code: str | None
    parent_code: str | None = None
    sector_codes: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class UserSeed:
    username: str
    full_name: str
    role: str
    password: str
    agency_code: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ClientSeed:
    client_id: str
    name: str
    source_system: str
    secret: str
    role: str = "integration"
    agency_code: str | None = None


REGION_CODE = "23"

# --------------------------------------------------------------------------- categories


def _sector(
    code: str, name_ru: str, name_en: str, *subs: tuple[str, str, str]
) -> tuple[CategorySeed, ...]:
    """A sector followed by its subcategories (codes are prefixed with the sector code)."""
    return (
        CategorySeed(code, name_ru, name_en, None),
        *(CategorySeed(f"{code}.{sub}", ru, en, code) for sub, ru, en in subs),
    )


CATEGORIES: tuple[CategorySeed, ...] = (
    *_sector(
        "healthcare",
        "Здравоохранение",
        "Healthcare",
        ("appointments", "Запись к врачу", "Doctor appointments"),
        ("medicines", "Лекарственное обеспечение", "Medicine supply"),
        ("ambulance", "Скорая медицинская помощь", "Ambulance service"),
        ("polyclinics", "Работа поликлиник", "Outpatient clinics"),
        ("hospitals", "Стационарная помощь", "Hospital care"),
        ("rural_posts", "Фельдшерско-акушерские пункты", "Rural medical posts"),
        ("staff_conduct", "Поведение медицинского персонала", "Medical staff conduct"),
    ),
    *_sector(
        "education",
        "Образование",
        "Education",
        ("kindergartens", "Детские сады: очередь и зачисление", "Kindergarten places"),
        ("schools", "Работа школ", "Schools"),
        ("school_meals", "Школьное питание", "School meals"),
        ("school_transport", "Подвоз школьников", "School transport"),
        ("extracurricular", "Дополнительное образование", "Extracurricular education"),
        ("buildings", "Состояние зданий учреждений образования", "Education buildings"),
    ),
    *_sector(
        "housing_utilities",
        "ЖКХ — жилищно-коммунальное хозяйство",
        "Housing and utilities",
        ("heating", "Отопление", "Heating"),
        ("water_supply", "Водоснабжение", "Water supply"),
        ("sewerage", "Водоотведение", "Sewerage"),
        ("elevators", "Лифты", "Elevators"),
        ("capital_repair", "Капитальный ремонт", "Major repairs"),
        ("management_companies", "Управляющие компании", "Management companies"),
        ("gas_supply", "Газоснабжение", "Gas supply"),
        ("common_property", "Содержание общего имущества МКД", "Common property upkeep"),
    ),
    *_sector(
        "energy",
        "Энергетика",
        "Energy",
        ("power_outages", "Отключения электроэнергии", "Power outages"),
        ("voltage", "Перепады и низкое напряжение", "Voltage problems"),
        ("power_lines", "Состояние ЛЭП и опор", "Power lines and poles"),
        ("grid_connection", "Технологическое присоединение", "Grid connection"),
        ("metering", "Приборы учёта и начисления", "Metering and billing"),
    ),
    *_sector(
        "solid_waste",
        "ТКО — обращение с твёрдыми коммунальными отходами",
        "Solid municipal waste",
        ("collection", "Вывоз ТКО", "Waste collection"),
        ("container_sites", "Контейнерные площадки", "Container sites"),
        ("illegal_dumps", "Несанкционированные свалки", "Illegal dumps"),
        ("bulky_waste", "Крупногабаритные отходы", "Bulky waste"),
        ("billing", "Начисления за вывоз ТКО", "Waste collection billing"),
        ("separate_collection", "Раздельный сбор отходов", "Separate waste collection"),
    ),
    *_sector(
        "roads",
        "Дороги",
        "Roads",
        ("potholes", "Ямы и ремонт покрытия", "Potholes and surface repair"),
        ("snow_ice", "Уборка снега и наледи", "Snow and ice clearing"),
        ("traffic_lights_signs", "Светофоры и дорожные знаки", "Traffic lights and signs"),
        ("sidewalks", "Тротуары", "Sidewalks"),
        ("lighting", "Освещение дорог", "Road lighting"),
        ("drainage", "Ливневая канализация и подтопления", "Storm drainage and flooding"),
        ("markings", "Дорожная разметка", "Road markings"),
    ),
    *_sector(
        "transport",
        "Общественный транспорт",
        "Public transport",
        ("schedule", "Соблюдение расписания", "Timetable adherence"),
        ("routes", "Маршрутная сеть", "Route network"),
        ("vehicle_condition", "Состояние транспорта", "Vehicle condition"),
        ("fares", "Оплата проезда и льготы", "Fares and concessions"),
        ("staff_conduct", "Поведение водителей и кондукторов", "Driver and conductor conduct"),
        ("stops", "Остановочные павильоны", "Bus stops"),
    ),
    *_sector(
        "social_protection",
        "Социальная защита",
        "Social protection",
        ("benefits", "Социальные выплаты и пособия", "Social benefits"),
        ("large_families", "Поддержка многодетных семей", "Large family support"),
        ("disability", "Поддержка людей с инвалидностью", "Disability support"),
        ("elderly_care", "Социальное обслуживание пожилых", "Elderly care"),
        ("svo_support", "Поддержка участников СВО и их семей", "Support for SMO veterans"),
        ("guardianship", "Опека и попечительство", "Guardianship"),
    ),
    *_sector(
        "public_amenities",
        "Благоустройство",
        "Public amenities",
        ("yards", "Благоустройство дворов", "Courtyards"),
        ("parks", "Парки и скверы", "Parks and squares"),
        ("playgrounds", "Детские и спортивные площадки", "Playgrounds and sports grounds"),
        ("greenery", "Озеленение и покос травы", "Greenery and mowing"),
        ("street_lighting", "Уличное освещение", "Street lighting"),
        ("stray_animals", "Безнадзорные животные", "Stray animals"),
        ("beaches", "Пляжи и набережные", "Beaches and embankments"),
    ),
    *_sector(
        "other",
        "Прочее",
        "Other",
        ("missing_persons", "Поиск пропавших людей", "Missing persons"),
        ("misc", "Иные вопросы", "Miscellaneous"),
    ),
)

# --------------------------------------------------------------------------- territories

_CD, _MD, _MO = "city_district", "municipal_district", "municipal_okrug"

# (code, oktmo, name, kind, approximate population, administration name)
# OKTMO only where known with confidence. Anapa (2024) and the Leningradsky,
# Primorsko-Akhtarsky and Tuapsinsky districts (2024) became municipal okrugs.
_MUNICIPAL: tuple[tuple[str, str | None, str, str, int, str], ...] = (
    ("krasnodar", "03701000", "город Краснодар", _CD, 1_140_000,
     "Администрация муниципального образования город Краснодар"),
    ("sochi", "03726000", "город-курорт Сочи", _CD, 460_000,
     "Администрация муниципального образования городской округ город-курорт Сочи"),
    ("novorossiysk", "03720000", "город Новороссийск", _CD, 340_000,
     "Администрация муниципального образования город Новороссийск"),
    ("anapa", "03703000", "город-курорт Анапа", _MO, 220_000,
     "Администрация муниципального округа город-курорт Анапа"),
    ("armavir", "03705000", "город Армавир", _CD, 185_000,
     "Администрация муниципального образования город Армавир"),
    ("gelendzhik", "03708000", "город-курорт Геленджик", _CD, 125_000,
     "Администрация муниципального образования город-курорт Геленджик"),
    ("goryachy-klyuch", "03709000", "город Горячий Ключ", _CD, 70_000,
     "Администрация муниципального образования город Горячий Ключ"),
    ("abinsky", None, "Абинский район", _MD, 100_000,
     "Администрация муниципального образования Абинский район"),
    ("apsheronsky", None, "Апшеронский район", _MD, 90_000,
     "Администрация муниципального образования Апшеронский район"),
    ("beloglinsky", None, "Белоглинский район", _MD, 29_000,
     "Администрация муниципального образования Белоглинский район"),
    ("belorechensky", None, "Белореченский район", _MD, 105_000,
     "Администрация муниципального образования Белореченский район"),
    ("bryukhovetsky", None, "Брюховецкий район", _MD, 50_000,
     "Администрация муниципального образования Брюховецкий район"),
    ("vyselkovsky", None, "Выселковский район", _MD, 58_000,
     "Администрация муниципального образования Выселковский район"),
    ("gulkevichsky", None, "Гулькевичский район", _MD, 95_000,
     "Администрация муниципального образования Гулькевичский район"),
    ("dinskoy", None, "Динской район", _MD, 145_000,
     "Администрация муниципального образования Динской район"),
    ("yeysky", None, "Ейский район", _MD, 135_000,
     "Администрация муниципального образования Ейский район"),
    ("kavkazsky", None, "Кавказский район", _MD, 115_000,
     "Администрация муниципального образования Кавказский район"),
    ("kalininsky", None, "Калининский район", _MD, 50_000,
     "Администрация муниципального образования Калининский район"),
    ("kanevskoy", None, "Каневской район", _MD, 100_000,
     "Администрация муниципального образования Каневской район"),
    ("korenovsky", None, "Кореновский район", _MD, 87_000,
     "Администрация муниципального образования Кореновский район"),
    ("krasnoarmeysky", None, "Красноармейский район", _MD, 100_000,
     "Администрация муниципального образования Красноармейский район"),
    ("krylovsky", None, "Крыловский район", _MD, 35_000,
     "Администрация муниципального образования Крыловский район"),
    ("krymsky", None, "Крымский район", _MD, 125_000,
     "Администрация муниципального образования Крымский район"),
    ("kurganinsky", None, "Курганинский район", _MD, 100_000,
     "Администрация муниципального образования Курганинский район"),
    ("kushchevsky", None, "Кущевский район", _MD, 65_000,
     "Администрация муниципального образования Кущевский район"),
    ("labinsky", None, "Лабинский район", _MD, 95_000,
     "Администрация муниципального образования Лабинский район"),
    ("leningradsky", None, "Ленинградский муниципальный округ", _MO, 63_000,
     "Администрация муниципального образования Ленинградский муниципальный округ"),
    ("mostovsky", None, "Мостовский район", _MD, 70_000,
     "Администрация муниципального образования Мостовский район"),
    ("novokubansky", None, "Новокубанский район", _MD, 85_000,
     "Администрация муниципального образования Новокубанский район"),
    ("novopokrovsky", None, "Новопокровский район", _MD, 40_000,
     "Администрация муниципального образования Новопокровский район"),
    ("otradnensky", None, "Отрадненский район", _MD, 58_000,
     "Администрация муниципального образования Отрадненский район"),
    ("pavlovsky", None, "Павловский район", _MD, 60_000,
     "Администрация муниципального образования Павловский район"),
    ("primorsko-akhtarsky", None, "Приморско-Ахтарский муниципальный округ", _MO, 55_000,
     "Администрация муниципального образования Приморско-Ахтарский муниципальный округ"),
    ("seversky", None, "Северский район", _MD, 130_000,
     "Администрация муниципального образования Северский район"),
    ("slavyansky", None, "Славянский район", _MD, 125_000,
     "Администрация муниципального образования Славянский район"),
    ("starominsky", None, "Староминский район", _MD, 38_000,
     "Администрация муниципального образования Староминский район"),
    ("tbilissky", None, "Тбилисский район", _MD, 45_000,
     "Администрация муниципального образования Тбилисский район"),
    ("temryuksky", None, "Темрюкский район", _MD, 120_000,
     "Администрация муниципального образования Темрюкский район"),
    ("timashevsky", None, "Тимашевский район", _MD, 110_000,
     "Администрация муниципального образования Тимашевский район"),
    ("tikhoretsky", None, "Тихорецкий район", _MD, 115_000,
     "Администрация муниципального образования Тихорецкий район"),
    ("tuapsinsky", None, "Туапсинский муниципальный округ", _MO, 120_000,
     "Администрация муниципального образования Туапсинский муниципальный округ"),
    ("uspensky", None, "Успенский район", _MD, 40_000,
     "Администрация муниципального образования Успенский район"),
    ("ust-labinsky", None, "Усть-Лабинский район", _MD, 110_000,
     "Администрация муниципального образования Усть-Лабинский район"),
    ("shcherbinovsky", None, "Щербиновский район", _MD, 33_000,
     "Администрация муниципального образования Щербиновский район"),
)  # fmt: skip

MUNICIPAL_FORMATION_COUNT = 44

TERRITORIES: tuple[TerritorySeed, ...] = (
    TerritorySeed(REGION_CODE, "03000000", "Краснодарский край", "region", None, 5_850_000),
    *(
        TerritorySeed(code, oktmo, name, kind, REGION_CODE, population)
        for code, oktmo, name, kind, population, _adm in _MUNICIPAL
    ),
)

# --------------------------------------------------------------------------- agencies

MUNICIPAL_SECTORS: tuple[str, ...] = (
    "housing_utilities",
    "roads",
    "transport",
    "public_amenities",
    "solid_waste",
    "education",
)

_REGIONAL_AGENCIES: tuple[AgencySeed, ...] = (
    AgencySeed(
        "cur",
        "Центр управления регионом Краснодарского края",
        "control_centre",
        REGION_CODE,
        email="cur@krasnodar.example",
        phone="+7 861 000-00-00",
    ),
    AgencySeed(
        "minzdrav",
        "Министерство здравоохранения Краснодарского края",
        "regional_ministry",
        REGION_CODE,
        sector_codes=("healthcare",),
        email="minzdrav@krasnodar.example",
        phone="+7 861 000-00-01",
    ),
    AgencySeed(
        "minobr",
        "Министерство образования, науки и молодёжной политики Краснодарского края",
        "regional_ministry",
        REGION_CODE,
        sector_codes=("education",),
        email="minobr@krasnodar.example",
        phone="+7 861 000-00-02",
    ),
    AgencySeed(
        "mintek",
        "Министерство топливно-энергетического комплекса и жилищно-коммунального "
        "хозяйства Краснодарского края",
        "regional_ministry",
        REGION_CODE,
        sector_codes=("housing_utilities", "energy", "solid_waste"),
        email="mintek@krasnodar.example",
        phone="+7 861 000-00-03",
    ),
    AgencySeed(
        "mintrans",
        "Министерство транспорта и дорожного хозяйства Краснодарского края",
        "regional_ministry",
        REGION_CODE,
        sector_codes=("roads", "transport"),
        email="mintrans@krasnodar.example",
        phone="+7 861 000-00-04",
    ),
    AgencySeed(
        "mintrud",
        "Министерство труда и социального развития Краснодарского края",
        "regional_ministry",
        REGION_CODE,
        sector_codes=("social_protection",),
        email="mintrud@krasnodar.example",
        phone="+7 861 000-00-05",
    ),
    # Missing persons reach these partners by routing rule, not by sector.
    AgencySeed(
        "lizaalert",
        "Поисково-спасательный отряд «ЛизаАлерт» (Краснодарский край)",
        "partner",
        REGION_CODE,
        email="krasnodar@lizaalert.example",
    ),
    AgencySeed(
        "missing-persons-centre",
        "Кубанский центр поиска пропавших людей",
        "partner",
        REGION_CODE,
        email="info@poisk-kuban.example",
    ),
)

AGENCIES: tuple[AgencySeed, ...] = (
    *_REGIONAL_AGENCIES,
    *(
        AgencySeed(
            f"adm-{code}",
            adm_name,
            "municipal_administration",
            code,
            sector_codes=MUNICIPAL_SECTORS,
            email=f"adm@{code}.krasnodar.example",
        )
        for code, _oktmo, _name, _kind, _population, adm_name in _MUNICIPAL
    ),
)

# --------------------------------------------------------------------------- demo accounts

DEMO_USERS: tuple[UserSeed, ...] = (
    UserSeed("admin", "Администратов Алексей Петрович", "admin", "demo-admin-2026"),
    UserSeed("operator", "Операторова Ольга Сергеевна", "operator", "demo-operator-2026"),
    UserSeed("analyst", "Аналитиков Андрей Викторович", "analyst", "demo-analyst-2026"),
    UserSeed(
        "krasnodar",
        "Краснова Екатерина Игоревна",
        "agency",
        "demo-krasnodar-2026",
        agency_code="adm-krasnodar",
    ),
    UserSeed(
        "minzdrav",
        "Здравов Михаил Николаевич",
        "agency",
        "demo-minzdrav-2026",
        agency_code="minzdrav",
    ),
)

DEMO_CLIENTS: tuple[ClientSeed, ...] = (
    ClientSeed(
        "incident-management",
        "Инцидент Менеджмент (мониторинг соцсетей)",
        "incident-management",
        "demo-incident-secret-2026",
    ),
    ClientSeed(
        "pos-platform",
        "Платформа обратной связи (ПОС)",
        "pos",
        "demo-pos-secret-2026",
    ),
)

# --------------------------------------------------------------------------- invariants

_TERRITORY_KINDS = frozenset({"region", "city_district", "municipal_district", "municipal_okrug"})
_AGENCY_KINDS = frozenset(
    {"control_centre", "regional_ministry", "municipal_administration", "partner"}
)
_USER_ROLES = frozenset({"admin", "operator", "analyst", "agency"})


def _assert_unique(values: list[str], what: str) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    assert not dupes, f"duplicate {what}: {dupes}"


def validate() -> None:
    """Assert the cross-references and uniqueness of the demo data."""
    # Categories: unique codes, two levels, subcategory codes prefixed by their sector.
    _assert_unique([c.code for c in CATEGORIES], "category codes")
    sectors = {c.code for c in CATEGORIES if c.parent_code is None}
    assert len(sectors) == 10, sectors
    for c in CATEGORIES:
        assert c.code and len(c.code) <= 64 and c.name_ru and c.name_en, c
        if c.parent_code is not None:
            assert c.parent_code in sectors, c
            assert c.code.startswith(c.parent_code + "."), c
    for s in sectors:
        n = sum(1 for c in CATEGORIES if c.parent_code == s)
        assert (1 if s == "other" else 4) <= n <= 8, (s, n)

    # Territories: one region, 44 top-level formations under it.
    _assert_unique([t.code for t in TERRITORIES], "territory codes")
    _assert_unique([t.name for t in TERRITORIES], "territory names")
    _assert_unique([t.oktmo for t in TERRITORIES if t.oktmo], "OKTMO codes")
    territory_codes = {t.code for t in TERRITORIES}
    for t in TERRITORIES:
        assert t.kind in _TERRITORY_KINDS, t
        assert t.oktmo is None or (len(t.oktmo) == 8 and t.oktmo.isdigit()), t
        assert t.population > 0, t
        if t.kind == "region":
            assert t.parent_code is None, t
        else:
            assert t.parent_code in territory_codes, t
    municipal = [t for t in TERRITORIES if t.parent_code == REGION_CODE]
    assert len(municipal) == MUNICIPAL_FORMATION_COUNT, len(municipal)

    # Agencies: references resolve, sectors are top-level, one administration per formation.
    _assert_unique([a.code for a in AGENCIES], "agency codes")
    agency_codes = {a.code for a in AGENCIES}
    for a in AGENCIES:
        assert a.kind in _AGENCY_KINDS, a
        assert a.territory_code is None or a.territory_code in territory_codes, a
        assert a.parent_code is None or a.parent_code in agency_codes, a
        assert set(a.sector_codes) <= sectors, a
        _assert_unique(list(a.sector_codes), f"sectors of {a.code}")
        assert a.email is None or a.email.endswith(".example"), a
    admins = {a.territory_code for a in AGENCIES if a.kind == "municipal_administration"}
    assert admins == {t.code for t in municipal}, admins ^ {t.code for t in municipal}
    assert all(f"adm-{t.code}" in agency_codes for t in municipal)

    # Demo accounts.
    _assert_unique([u.username for u in DEMO_USERS], "usernames")
    for u in DEMO_USERS:
        assert u.role in _USER_ROLES, u
        assert len(u.password) >= 12, u.username
        assert (u.role == "agency") == (u.agency_code is not None), u
        assert u.agency_code is None or u.agency_code in agency_codes, u
    _assert_unique([c.client_id for c in DEMO_CLIENTS], "client ids")
    _assert_unique([c.source_system for c in DEMO_CLIENTS], "client source systems")
    for c in DEMO_CLIENTS:
        assert len(c.secret) >= 12, c.client_id
        assert c.agency_code is None or c.agency_code in agency_codes, c
