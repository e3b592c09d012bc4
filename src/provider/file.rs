//! Directory provider: loads every *.yaml / *.yml, keeps each file's last good
//! objects, watches the directory. (Placeholder: implemented in its own change.)
