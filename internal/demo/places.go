package demo

import "github.com/paulmach/orb"

// Reference tables of real Brussels places. Coordinates are approximate (to a
// few tens of metres); the tests check that each lies inside the region and,
// for town halls, inside its own municipality. The tables are built by
// functions so that the package holds no mutable state.

// locality is what an address needs for a municipality: its main postcode and
// a few of its real streets.
type locality struct {
	postcode string
	streets  []string
}

// localities is keyed by NIS code.
func localities() map[string]locality {
	return map[string]locality{
		"21001": {"1070", []string{"Chaussée de Mons", "Rue Wayez", "Boulevard Sylvain Dupuis", "Rue de Fiennes", "Avenue Clemenceau"}},
		"21002": {"1160", []string{"Chaussée de Wavre", "Boulevard du Souverain", "Rue Émile Idiers", "Avenue de Beaulieu"}},
		"21003": {"1082", []string{"Avenue du Roi Albert", "Rue de Grand-Bigard", "Chaussée de Gand"}},
		"21004": {"1000", []string{"Rue Neuve", "Rue Haute", "Boulevard Anspach", "Rue Antoine Dansaert", "Rue du Marché aux Herbes", "Boulevard Adolphe Max"}},
		"21005": {"1040", []string{"Avenue d'Auderghem", "Rue des Champs", "Avenue de la Chasse", "Rue Général Leman"}},
		"21006": {"1140", []string{"Avenue Henri Conscience", "Chaussée de Haecht", "Rue de Paris"}},
		"21007": {"1190", []string{"Chaussée de Bruxelles", "Avenue Van Volxem", "Rue du Curé", "Avenue du Roi"}},
		"21008": {"1083", []string{"Avenue de Villegas", "Avenue Charles-Quint", "Avenue Van Overbeke"}},
		"21009": {"1050", []string{"Chaussée d'Ixelles", "Rue du Bailli", "Avenue de la Couronne", "Rue Malibran", "Place Flagey"}},
		"21010": {"1090", []string{"Chaussée de Wemmel", "Boulevard de Smet de Naeyer", "Rue Léon Theodor", "Avenue de Laeken"}},
		"21011": {"1081", []string{"Avenue de la Liberté", "Rue Herkoliers", "Boulevard Léopold II"}},
		"21012": {"1080", []string{"Chaussée de Gand", "Rue du Comte de Flandre", "Boulevard Edmond Machtens", "Chaussée de Ninove"}},
		"21013": {"1060", []string{"Chaussée de Waterloo", "Avenue Jean Volders", "Rue de la Victoire", "Chaussée de Forest"}},
		"21014": {"1210", []string{"Chaussée de Louvain", "Avenue de l'Astronomie", "Rue Royale", "Chaussée de Haecht"}},
		"21015": {"1030", []string{"Chaussée de Haecht", "Avenue Louis Bertrand", "Boulevard Lambermont", "Rue de Brabant"}},
		"21016": {"1180", []string{"Chaussée d'Alsemberg", "Avenue Brugmann", "Rue Xavier de Bue", "Chaussée de Waterloo"}},
		"21017": {"1170", []string{"Chaussée de La Hulpe", "Avenue Delleur", "Place Keym", "Boulevard du Souverain"}},
		"21018": {"1200", []string{"Avenue Paul Hymans", "Boulevard Brand Whitlock", "Avenue Georges Henri", "Rue Voot"}},
		"21019": {"1150", []string{"Avenue de Tervueren", "Avenue Charles Thielemans", "Rue au Bois", "Avenue de Broqueville"}},
	}
}

// localityAt refines localities for the City of Brussels, whose territory
// spans several postcodes (the Pentagon, Laeken, Neder-Over-Heembeek, Haren,
// the European quarter, the Avenue Louise and Bois de la Cambre).
func localityAt(all map[string]locality, nis string, p orb.Point) locality {
	if nis != "21004" {
		return all[nis]
	}
	lon, lat := p[0], p[1]
	switch {
	case lon > 4.395 && lat > 50.87:
		return locality{"1130", []string{"Rue de Verdun", "Rue du Witloof", "Rue Cortenbach"}}
	case lat > 50.89:
		return locality{"1120", []string{"Chaussée de Vilvorde", "Rue de Lombartzyde", "Rue François Vekemans"}}
	case lat > 50.865:
		return locality{"1020", []string{"Boulevard Émile Bockstael", "Rue Marie-Christine", "Avenue Houba-de Strooper", "Avenue de la Reine"}}
	case lat < 50.83:
		return locality{"1050", []string{"Avenue Louise", "Avenue Franklin Roosevelt"}}
	case lon > 4.365 && lat < 50.85:
		return locality{"1040", []string{"Rue de la Loi", "Rue Belliard", "Avenue de Cortenbergh"}}
	}
	return all[nis]
}

// site is a named place with an approximate position.
type site struct {
	key     string // stable id suffix
	name    string
	street  string
	lon     float64
	lat     float64
	nis     string  // expected municipality (town halls only)
	level   float64 // model-specific base level
	profile string  // model-specific kind
}

// townHalls are the 19 maisons communales / gemeentehuizen.
func townHalls() []site {
	return []site{
		{nis: "21001", name: "Maison communale d'Anderlecht", street: "Place du Conseil 1", lon: 4.3098, lat: 50.8365},
		{nis: "21002", name: "Maison communale d'Auderghem", street: "Rue Émile Idiers 12", lon: 4.4275, lat: 50.8155},
		{nis: "21003", name: "Maison communale de Berchem-Sainte-Agathe", street: "Avenue du Roi Albert 33", lon: 4.2955, lat: 50.8640},
		{nis: "21004", name: "Hôtel de Ville de Bruxelles", street: "Grand-Place 1", lon: 4.3517, lat: 50.8465},
		{nis: "21005", name: "Maison communale d'Etterbeek", street: "Avenue d'Auderghem 113", lon: 4.3870, lat: 50.8365},
		{nis: "21006", name: "Maison communale d'Evere", street: "Square Hoedemaekers 10", lon: 4.4020, lat: 50.8705},
		{nis: "21007", name: "Maison communale de Forest", street: "Rue du Curé 2", lon: 4.3245, lat: 50.8105},
		{nis: "21008", name: "Maison communale de Ganshoren", street: "Avenue de Villegas 31", lon: 4.3088, lat: 50.8716},
		{nis: "21009", name: "Maison communale d'Ixelles", street: "Chaussée d'Ixelles 168", lon: 4.3688, lat: 50.8330},
		{nis: "21010", name: "Maison communale de Jette", street: "Chaussée de Wemmel 100", lon: 4.3260, lat: 50.8795},
		{nis: "21011", name: "Maison communale de Koekelberg", street: "Place Henri Vanhuffel 6", lon: 4.3290, lat: 50.8622},
		{nis: "21012", name: "Maison communale de Molenbeek-Saint-Jean", street: "Rue du Comte de Flandre 20", lon: 4.3375, lat: 50.8548},
		{nis: "21013", name: "Hôtel de ville de Saint-Gilles", street: "Place Maurice Van Meenen 39", lon: 4.3463, lat: 50.8287},
		{nis: "21014", name: "Maison communale de Saint-Josse-ten-Noode", street: "Avenue de l'Astronomie 12", lon: 4.3712, lat: 50.8503},
		{nis: "21015", name: "Hôtel communal de Schaerbeek", street: "Place Colignon", lon: 4.3782, lat: 50.8675},
		{nis: "21016", name: "Maison communale d'Uccle", street: "Place Jean Vander Elst 29", lon: 4.3325, lat: 50.8025},
		{nis: "21017", name: "Maison communale de Watermael-Boitsfort", street: "Place Antoine Gilson 1", lon: 4.4155, lat: 50.7995},
		{nis: "21018", name: "Maison communale de Woluwe-Saint-Lambert", street: "Avenue Paul Hymans 2", lon: 4.4270, lat: 50.8445},
		{nis: "21019", name: "Maison communale de Woluwe-Saint-Pierre", street: "Avenue Charles Thielemans 93", lon: 4.4335, lat: 50.8330},
	}
}

// airStations are telemetric air-quality stations of the Brussels network
// (codes as used by IRCEL-CELINE); level is a typical NO₂ annual mean in µg/m³.
func airStations() []site {
	return []site{
		{key: "41R001", name: "41R001 - Molenbeek-Saint-Jean", street: "Quai du Hainaut", lon: 4.3385, lat: 50.8485, level: 30, profile: "urban"},
		{key: "41R002", name: "41R002 - Ixelles", street: "Avenue de la Couronne", lon: 4.3852, lat: 50.8260, level: 35, profile: "traffic"},
		{key: "41R012", name: "41R012 - Uccle", street: "Avenue Circulaire", lon: 4.3585, lat: 50.7985, level: 18, profile: "background"},
		{key: "41B003", name: "41B003 - Arts-Loi", street: "Rue de la Loi", lon: 4.3700, lat: 50.8452, level: 45, profile: "traffic"},
		{key: "41B004", name: "41B004 - Sainte-Catherine", street: "Place Sainte-Catherine", lon: 4.3480, lat: 50.8504, level: 32, profile: "urban"},
		{key: "41B006", name: "41B006 - Parlement européen", street: "Rue Wiertz", lon: 4.3745, lat: 50.8387, level: 28, profile: "urban"},
		{key: "41N043", name: "41N043 - Haren", street: "Rue du Witloof", lon: 4.4190, lat: 50.8880, level: 30, profile: "industrial"},
		{key: "41WOL1", name: "41WOL1 - Woluwe-Saint-Lambert", street: "Avenue Georges Henri", lon: 4.4260, lat: 50.8470, level: 22, profile: "background"},
	}
}

// noiseSites are permanent noise meters; level is a typical daytime LAeq in dB(A).
func noiseSites() []site {
	return []site{
		{key: "regent", name: "Sonomètre Boulevard du Régent", street: "Boulevard du Régent", lon: 4.3685, lat: 50.8420, level: 71},
		{key: "meiser", name: "Sonomètre Place Meiser", street: "Place Meiser", lon: 4.3963, lat: 50.8538, level: 70},
		{key: "porte-de-namur", name: "Sonomètre Porte de Namur", street: "Avenue de la Toison d'Or", lon: 4.3618, lat: 50.8378, level: 69},
		{key: "loi", name: "Sonomètre Rue de la Loi", street: "Rue de la Loi", lon: 4.3730, lat: 50.8430, level: 70},
		{key: "general-jacques", name: "Sonomètre Boulevard Général Jacques", street: "Boulevard Général Jacques", lon: 4.3885, lat: 50.8250, level: 68},
		{key: "parc-woluwe", name: "Sonomètre Parc de Woluwe", street: "Avenue de Tervueren", lon: 4.4400, lat: 50.8305, level: 58},
	}
}

// pedestrianCounters sit on shopping streets; level is the number of
// pedestrians per 15 minutes at the Saturday-afternoon peak.
func pedestrianCounters() []site {
	return []site{
		{key: "rue-neuve", name: "Compteur piétons Rue Neuve", street: "Rue Neuve", lon: 4.3559, lat: 50.8519, level: 2400},
		{key: "avenue-louise", name: "Compteur piétons Avenue Louise", street: "Avenue Louise", lon: 4.3646, lat: 50.8317, level: 700},
		{key: "rue-du-midi", name: "Compteur piétons Rue du Midi", street: "Rue du Midi", lon: 4.3486, lat: 50.8455, level: 900},
		{key: "chaussee-d-ixelles", name: "Compteur piétons Chaussée d'Ixelles", street: "Chaussée d'Ixelles", lon: 4.3676, lat: 50.8345, level: 1100},
		{key: "boulevard-anspach", name: "Compteur piétons Boulevard Anspach", street: "Boulevard Anspach", lon: 4.3497, lat: 50.8478, level: 1500},
		{key: "rue-dansaert", name: "Compteur piétons Rue Antoine Dansaert", street: "Rue Antoine Dansaert", lon: 4.3465, lat: 50.8505, level: 500},
		{key: "rue-du-bailli", name: "Compteur piétons Rue du Bailli", street: "Rue du Bailli", lon: 4.3603, lat: 50.8259, level: 400},
		{key: "matonge", name: "Compteur piétons Chaussée de Wavre (Matonge)", street: "Chaussée de Wavre", lon: 4.3695, lat: 50.8362, level: 500},
		{key: "rue-de-brabant", name: "Compteur piétons Rue de Brabant", street: "Rue de Brabant", lon: 4.3590, lat: 50.8595, level: 800},
		{key: "chaussee-de-gand", name: "Compteur piétons Chaussée de Gand", street: "Chaussée de Gand", lon: 4.3345, lat: 50.8560, level: 700},
	}
}
