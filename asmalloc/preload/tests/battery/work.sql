-- sqlite3 work for the battery (@ROWS@ is replaced by the test).
PRAGMA journal_mode = DELETE;
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, score REAL, note TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @ROWS@)
INSERT INTO item(name, grp, score, note)
SELECT printf('item-%06d', (x * 7919) % 1000003), x % 37, ((x * 31337) % 10007) / 10.0,
       substr('lorem ipsum dolor sit amet consectetur adipiscing elit', 1 + x % 20, 10 + x % 30)
FROM c;
CREATE INDEX item_grp ON item(grp, score);
CREATE TABLE grp_total AS SELECT grp, count(*) AS n, sum(score) AS s FROM item GROUP BY grp;
UPDATE item SET score = score * 2 WHERE grp IN (SELECT grp FROM grp_total WHERE s > (SELECT avg(s) FROM grp_total));
DELETE FROM item WHERE id % 11 = 0;
SELECT count(*), round(sum(score), 1), min(name), max(name) FROM item;
SELECT grp, count(*), round(avg(score), 3), group_concat(id, ',') FILTER (WHERE id < 40) FROM item GROUP BY grp ORDER BY grp LIMIT 8;
SELECT a.name, b.name FROM item a JOIN item b ON a.grp = b.grp AND b.id = a.id + 37 ORDER BY a.score DESC, a.id LIMIT 5;
SELECT json_group_array(json_object('id', id, 'name', name)) FROM (SELECT id, name FROM item ORDER BY score DESC, id LIMIT 5);
SELECT upper(note), count(*) FROM item GROUP BY note ORDER BY count(*) DESC, note LIMIT 5;
VACUUM;
PRAGMA integrity_check;
