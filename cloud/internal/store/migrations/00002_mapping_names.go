package migrations

import (
	"context"

	"gorm.io/gorm"
)

// mappingName is Mapping's name column as version 2 added it: unique within
// a home, NULL when unnamed.
type mappingName struct {
	HomeID uint64  `gorm:"not null;index;uniqueIndex:idx_mapping_home_name,priority:1"`
	Name   *string `gorm:"size:32;uniqueIndex:idx_mapping_home_name,priority:2"`
}

func (mappingName) TableName() string { return "mappings" }

// mappingNames (version 2) gives mappings a name, and each private mapping
// stored before names existed the name private-ID (unless its home already
// uses that name), so `home connect` reaches every private mapping by name.
func mappingNames(_ context.Context, tx *gorm.DB) error {
	if err := AddColumns(tx, &mappingName{}, "Name"); err != nil {
		return err
	}
	if err := AddIndexes(tx, &mappingName{}, "idx_mapping_home_name"); err != nil {
		return err
	}
	return tx.Exec(`UPDATE mappings SET name = 'private-' || CAST(id AS TEXT)
		WHERE private = ? AND name IS NULL AND NOT EXISTS (
			SELECT 1 FROM mappings other WHERE other.home_id = mappings.home_id AND other.name = 'private-' || CAST(mappings.id AS TEXT))`, true).Error
}
