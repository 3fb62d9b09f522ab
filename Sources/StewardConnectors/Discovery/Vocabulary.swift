/// Word lists the detectors consult. Small on purpose: a name from the list raises confidence, but
/// the column's name and the shape of its values carry most of the decision, so names outside the
/// lists are still found where the column says it holds names.
enum Vocabulary {
    static let firstNames: Set<String> = [
        "aaron", "abigail", "adam", "ada", "adrian", "ahmed", "aisha", "alan", "albert", "alex", "alexander",
        "alexandra", "alice", "alicia", "amanda", "amelia", "amy", "ana", "andrea", "andrew", "angela", "anna",
        "anne", "anthony", "antonio", "arthur", "ashley", "barbara", "ben", "benjamin", "bernard", "beth", "bob",
        "brandon", "brian", "bruce", "carl", "carlos", "carmen", "carol", "caroline", "catherine", "charles",
        "charlotte", "chen", "chloe", "chris", "christian", "christina", "christine", "christopher", "claire",
        "claudia", "cynthia", "daniel", "david", "deborah", "dennis", "diana", "diego", "donald", "donna",
        "dorothy", "edsger", "edward", "elena", "elizabeth", "ella", "emily", "emma", "eric", "ethan", "eva",
        "fatima", "frances", "francesca", "francis", "frank", "gabriel", "gary", "george", "grace", "hannah",
        "hans", "harry", "hedy", "helen", "henry", "hiroshi", "ian", "isabella", "jack", "jacob", "james",
        "jane", "janet", "jason", "jean", "jennifer", "jessica", "joan", "john", "jonathan", "jorge", "jose",
        "joseph", "joshua", "juan", "julia", "julie", "karen", "katherine", "kathleen", "ken", "kevin", "kim",
        "laura", "lauren", "leslie", "li", "linda", "linus", "lisa", "lucas", "lucy", "luis", "maria", "margaret",
        "mark", "martha", "martin", "mary", "matthew", "mei", "melissa", "michael", "michelle", "mohammed",
        "nancy", "natalie", "nicholas", "nicole", "niklaus", "noah", "olivia", "oliver", "omar", "pablo",
        "patricia", "patrick", "paul", "pedro", "peter", "pierre", "priya", "rachel", "radia", "rahul", "raj",
        "rebecca", "richard", "robert", "ronald", "rosa", "ruth", "ryan", "samuel", "sandra", "sarah", "scott",
        "sean", "shafi", "sharon", "sofia", "sophie", "stephanie", "stephen", "steven", "susan", "thomas",
        "tim", "timothy", "tom", "victoria", "wei", "william", "yuki", "zoe",
    ]

    static let lastNames: Set<String> = [
        "adams", "allen", "anderson", "backus", "baker", "berners", "brown", "campbell", "carter", "chen",
        "clark", "collins", "cook", "davies", "davis", "dijkstra", "edwards", "evans", "fischer", "garcia",
        "goldwasser", "gonzalez", "green", "hall", "hamilton", "harris", "hernandez", "hill", "hopper",
        "jackson", "johnson", "jones", "king", "knuth", "lamarr", "lamport", "lee", "lewis", "liskov", "lopez",
        "lovelace", "martin", "martinez", "meyer", "miller", "mitchell", "moore", "morgan", "muller", "murphy",
        "nakamura", "nelson", "nguyen", "parker", "patel", "perez", "perlman", "phillips", "ritchie",
        "roberts", "robinson", "rodriguez", "rossi", "sanchez", "schmidt", "schneider", "scott", "singh",
        "smith", "suzuki", "tanaka", "taylor", "thomas", "thompson", "torvalds", "turing", "turner", "walker",
        "wang", "weber", "white", "williams", "wilson", "wirth", "wright", "young", "zhang",
    ]

    /// ISO 3166 alpha-2 codes (lower case) and the English names of common countries.
    static let countries: Set<String> = [
        "ad", "ae", "ar", "at", "au", "be", "bg", "br", "ca", "ch", "cl", "cn", "co", "cy", "cz", "de", "dk",
        "ee", "eg", "es", "fi", "fr", "gb", "gr", "hk", "hr", "hu", "id", "ie", "il", "in", "is", "it", "jp",
        "kr", "li", "lt", "lu", "lv", "mt", "mx", "my", "ng", "nl", "no", "nz", "pe", "ph", "pk", "pl", "pt",
        "ro", "rs", "ru", "sa", "se", "sg", "si", "sk", "th", "tr", "tw", "ua", "uk", "us", "vn", "za",
        "argentina", "australia", "austria", "belgium", "brazil", "canada", "china", "denmark", "finland",
        "france", "germany", "greece", "india", "ireland", "italy", "japan", "mexico", "netherlands",
        "new zealand", "norway", "poland", "portugal", "spain", "sweden", "switzerland", "united kingdom",
        "united states", "usa",
    ]

    static let genders: Set<String> = [
        "f", "m", "x", "female", "male", "woman", "man", "non-binary", "nonbinary", "other", "diverse",
        "prefer not to say",
    ]

    static let streetWords: Set<String> = [
        "street", "st", "avenue", "ave", "road", "rd", "lane", "ln", "drive", "dr", "boulevard", "blvd", "way",
        "court", "ct", "place", "pl", "square", "sq", "terrace", "close", "crescent", "highway", "hwy",
        "parkway", "row", "strasse", "straße", "str", "weg", "gasse", "platz", "allee", "rue", "calle",
        "via", "straat", "laan", "gata", "vej",
    ]

    /// German, Dutch and Scandinavian street names run the word together: "Hauptstraße", "Kerkstraat".
    static let streetSuffixes = [
        "straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "straat", "gata", "vej",
    ]
}
