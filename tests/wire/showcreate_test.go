package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// SHOW CREATE TABLE prints what MySQL 8.0 prints for the same DDL, so a
// schema-diffing tool sees no difference: DEFAULT NULL on nullable
// columns (not on BLOB and TEXT ones), NULL on a nullable TIMESTAMP,
// generated columns as MySQL spells them, and the keys in InnoDB's order
// (primary, unique over NOT NULL columns, other unique, the rest, each in
// the order made). The expected texts are MySQL 8.0.31's.
func TestShowCreateTableAsMySQL(t *testing.T) {
	srv, _ := startWithDB(t, "d")
	c := soloConn(t, srv, "d")
	for _, tc := range []struct{ create, want string }{
		{
			`CREATE TABLE all_types (id INT NOT NULL AUTO_INCREMENT, ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT,
				ui INT UNSIGNED, bu BIGINT UNSIGNED, b BIT(8), bo BOOL, f FLOAT, d DOUBLE, dc DECIMAL(10,2), dc0 DECIMAL,
				dt DATE, dtm DATETIME, dtm3 DATETIME(3), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, tm6 TIME(6), y YEAR,
				c CHAR(10), vc VARCHAR(20), bn BINARY(4), vb VARBINARY(8),
				tt TINYTEXT, t TEXT, mt MEDIUMTEXT, lt LONGTEXT, tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
				e ENUM('a','b'), s SET('x','y'), j JSON, g GEOMETRY, pt POINT, ls LINESTRING, pg POLYGON,
				PRIMARY KEY (id))`,
			"CREATE TABLE `all_types` (\n" +
				"  `id` int NOT NULL AUTO_INCREMENT,\n" +
				"  `ti` tinyint DEFAULT NULL,\n" +
				"  `si` smallint DEFAULT NULL,\n" +
				"  `mi` mediumint DEFAULT NULL,\n" +
				"  `i` int DEFAULT NULL,\n" +
				"  `bi` bigint DEFAULT NULL,\n" +
				"  `ui` int unsigned DEFAULT NULL,\n" +
				"  `bu` bigint unsigned DEFAULT NULL,\n" +
				"  `b` bit(8) DEFAULT NULL,\n" +
				"  `bo` tinyint(1) DEFAULT NULL,\n" +
				"  `f` float DEFAULT NULL,\n" +
				"  `d` double DEFAULT NULL,\n" +
				"  `dc` decimal(10,2) DEFAULT NULL,\n" +
				"  `dc0` decimal(10,0) DEFAULT NULL,\n" +
				"  `dt` date DEFAULT NULL,\n" +
				"  `dtm` datetime DEFAULT NULL,\n" +
				"  `dtm3` datetime(3) DEFAULT NULL,\n" +
				"  `ts` timestamp NULL DEFAULT NULL,\n" +
				"  `ts6` timestamp(6) NULL DEFAULT NULL,\n" +
				"  `tm6` time(6) DEFAULT NULL,\n" +
				"  `y` year DEFAULT NULL,\n" +
				"  `c` char(10) DEFAULT NULL,\n" +
				"  `vc` varchar(20) DEFAULT NULL,\n" +
				"  `bn` binary(4) DEFAULT NULL,\n" +
				"  `vb` varbinary(8) DEFAULT NULL,\n" +
				"  `tt` tinytext,\n" +
				"  `t` text,\n" +
				"  `mt` mediumtext,\n" +
				"  `lt` longtext,\n" +
				"  `tb` tinyblob,\n" +
				"  `bl` blob,\n" +
				"  `mb` mediumblob,\n" +
				"  `lb` longblob,\n" +
				"  `e` enum('a','b') DEFAULT NULL,\n" +
				"  `s` set('x','y') DEFAULT NULL,\n" +
				"  `j` json DEFAULT NULL,\n" +
				"  `g` geometry DEFAULT NULL,\n" +
				"  `pt` point DEFAULT NULL,\n" +
				"  `ls` linestring DEFAULT NULL,\n" +
				"  `pg` polygon DEFAULT NULL,\n" +
				"  PRIMARY KEY (`id`)\n" +
				") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
		},
		{
			`CREATE TABLE keyed (id INT NOT NULL, a INT, b VARCHAR(10) NOT NULL, c VARCHAR(100), n INT NOT NULL DEFAULT 0,
				ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, note VARCHAR(20) DEFAULT 'x' COMMENT 'a note',
				KEY k_a (a), UNIQUE KEY u_c (c), UNIQUE KEY u_cp (c(10), n), UNIQUE KEY u_b (b), KEY k_n (n), PRIMARY KEY (id))`,
			"CREATE TABLE `keyed` (\n" +
				"  `id` int NOT NULL,\n" +
				"  `a` int DEFAULT NULL,\n" +
				"  `b` varchar(10) NOT NULL,\n" +
				"  `c` varchar(100) DEFAULT NULL,\n" +
				"  `n` int NOT NULL DEFAULT '0',\n" +
				"  `ts` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,\n" +
				"  `note` varchar(20) DEFAULT 'x' COMMENT 'a note',\n" +
				"  PRIMARY KEY (`id`),\n" +
				"  UNIQUE KEY `u_b` (`b`),\n" +
				"  UNIQUE KEY `u_c` (`c`),\n" +
				"  UNIQUE KEY `u_cp` (`c`(10),`n`),\n" +
				"  KEY `k_a` (`a`),\n" +
				"  KEY `k_n` (`n`)\n" +
				") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
		},
		{
			// The manual's example (SHOW CREATE TABLE Statement).
			"CREATE TABLE t1 (i1 INT CHECK (i1 <> 0), i2 INT, CHECK (i2 > i1), CHECK (i2 <> 0) NOT ENFORCED)",
			"CREATE TABLE `t1` (\n" +
				"  `i1` int DEFAULT NULL,\n" +
				"  `i2` int DEFAULT NULL,\n" +
				"  CONSTRAINT `t1_chk_1` CHECK ((`i1` <> 0)),\n" +
				"  CONSTRAINT `t1_chk_2` CHECK ((`i2` > `i1`)),\n" +
				"  CONSTRAINT `t1_chk_3` CHECK ((`i2` <> 0)) /*!80016 NOT ENFORCED */\n" +
				") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
		},
		{
			"CREATE TABLE gen (a INT, gv INT GENERATED ALWAYS AS (a + 1) VIRTUAL, gs INT GENERATED ALWAYS AS (a * 2) STORED NOT NULL)",
			"CREATE TABLE `gen` (\n" +
				"  `a` int DEFAULT NULL,\n" +
				"  `gv` int GENERATED ALWAYS AS ((`a` + 1)) VIRTUAL,\n" +
				"  `gs` int GENERATED ALWAYS AS ((`a` * 2)) STORED NOT NULL\n" +
				") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
		},
	} {
		mustExec(t, c, tc.create)
		name := strings.Fields(tc.create)[2]
		var got, def string
		require.NoError(t, c.QueryRowContext(t.Context(), "SHOW CREATE TABLE "+name).Scan(&got, &def))
		require.Equal(t, tc.want, def, name)
	}

	// A key added later takes its place in the same order.
	mustExec(t, c, "ALTER TABLE keyed ADD UNIQUE KEY u_a (a), ADD KEY k_b (b)")
	var name, def string
	require.NoError(t, c.QueryRowContext(t.Context(), "SHOW CREATE TABLE keyed").Scan(&name, &def))
	require.Contains(t, def, "  PRIMARY KEY (`id`),\n"+
		"  UNIQUE KEY `u_b` (`b`),\n"+
		"  UNIQUE KEY `u_c` (`c`),\n"+
		"  UNIQUE KEY `u_a` (`a`),\n"+
		"  UNIQUE KEY `u_cp` (`c`(10),`n`),\n"+
		"  KEY `k_a` (`a`),\n"+
		"  KEY `k_n` (`n`),\n"+
		"  KEY `k_b` (`b`)\n")
}
