package profile

import (
	"context"
	"fmt"
	"os"
	"time"

	"homeport.dev/home/internal/cloudapi"
	"homeport.dev/home/internal/config"
)

// releasedInfix marks the archive of a released home's profile
// (DIR.released-YYYYMMDD-HHMMSS): never listed or chosen as a profile.
const releasedInfix = ".released-"

// Release releases the profile's home on its cloud (a request signed with
// the home's key) and archives the profile directory beside itself, keys
// and certificates kept. It returns where the archive is. The caller makes
// sure no agent of the profile runs.
func Release(ctx context.Context, p *config.Profile, now time.Time) (archive string, err error) {
	client, err := p.CloudClient()
	if err != nil {
		return "", err
	}
	err = client.ReleaseHome(ctx, p.Cloud.Home)
	switch {
	case cloudapi.IsStatus(err, 401):
		return "", fmt.Errorf("%w\nthe cloud does not accept this home's key: if the home was released in the web UI already, the profile %s is of no use; move or delete it yourself", err, p.Dir)
	case err != nil && !cloudapi.IsStatus(err, 404): // 404: released already
		return "", err
	}
	return Archive(p.Dir, now)
}

// Archive renames a profile directory to DIR.released-YYYYMMDD-HHMMSS
// (with -2, -3... if taken) and returns the new path.
func Archive(dir string, now time.Time) (string, error) {
	base := dir + releasedInfix + now.UTC().Format("20060102-150405")
	archive := base
	for i := 2; exists(archive); i++ {
		archive = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(dir, archive); err != nil {
		return "", fmt.Errorf("the home is released, but its profile could not be archived (%v): %s is of no use now; move or delete it yourself", err, dir)
	}
	return archive, nil
}
